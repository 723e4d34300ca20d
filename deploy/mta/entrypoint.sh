#!/bin/bash
# Entry point of the MTA container (deploy/mta/Dockerfile).
#
# 1. Installs deploy/postfix/main.cf and master.cf (mounted read-only at
#    /etc/davmail/postfix) into /etc/postfix and sets the two site
#    settings main.cf says to change, from the environment:
#      MAIL_DOMAIN    -> mydomain (must equal the gateway's --mail-domain)
#      MAIL_HOSTNAME  -> myhostname (default mail.$MAIL_DOMAIN)
# 2. Writes /etc/postfix/vmailbox (main.cf's virtual_mailbox_maps) from
#    the gateway's users file, mounted read-only: every gateway user gets
#    user@MAIL_DOMAIN -> user/Maildir/ (a name holding an @ is its own
#    address), and rewrites it with a 'postfix reload' when the file
#    changes, checked every USERS_POLL seconds (default 30).
# 3. Runs Postfix in the foreground (postfix start-fg) as PID 1.
set -euo pipefail

src=${POSTFIX_SRC:-/etc/davmail/postfix}
users=${DAVMAIL_USERS:-/var/lib/davmail/users}
domain=${MAIL_DOMAIN:?set MAIL_DOMAIN (the gateway's --mail-domain)}
host=${MAIL_HOSTNAME:-mail.$domain}
poll=${USERS_POLL:-30}

install -m 0644 "$src/main.cf" /etc/postfix/main.cf
install -m 0644 "$src/master.cf" /etc/postfix/master.cf
postconf -e "mydomain=$domain" "myhostname=$host"

# vmailbox writes the map from the users file: "name:hash[:role]" lines,
# comments and blank lines skipped.
vmailbox() {
	local tmp=/etc/postfix/vmailbox.tmp
	if [[ -r $users ]]; then
		awk -F: -v d="$domain" '
			/^[[:space:]]*(#|$)/ { next }
			{ u = $1; a = (index(u, "@") ? u : u "@" d); print a, u "/Maildir/" }
		' "$users" >"$tmp"
	else
		: >"$tmp"
	fi
	mv "$tmp" /etc/postfix/vmailbox
}

stamp() { stat -c '%Y %s %i' "$users" 2>/dev/null || echo none; }

vmailbox
last=$(stamp)
(
	while sleep "$poll"; do
		now=$(stamp)
		if [[ $now != "$last" ]]; then
			last=$now
			vmailbox
			postfix reload >/dev/null 2>&1 || true
			echo "davmail-mta: users file changed: $(wc -l </etc/postfix/vmailbox) mailboxes" >&2
		fi
	done
) &

postfix check
exec postfix start-fg
