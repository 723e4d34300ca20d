package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/davmail/davmail/internal/auth"
	"github.com/davmail/davmail/internal/config"
	"golang.org/x/term"
)

const userUsage = `Usage:
  davmail user add [--users FILE] [--role admin] [--replace] [--cost N] NAME
  davmail user del [--users FILE] NAME
  davmail user list [--users FILE]

The password of 'user add' is read from standard input: one line, e.g.
  echo "$PASSWORD" | davmail user add --users /srv/davmail/users alice
On a terminal it is asked for twice, without echo. --replace changes the
password of an existing user (keeping the role unless --role is given).
--cost is the bcrypt cost, 10 by default (~50 ms per check; davmail
caches successful checks for 5 minutes).

--users defaults to DAVMAIL_USERS, else <DAVMAIL_DATA or ./davmail-data>/users,
the same file 'davmail serve' reads. A running server picks up changes
within a second. Names are 1-64 characters of A-Z a-z 0-9 . _ @ + -, not
starting with a dot.
`

// maxPasswordLine caps the password line read from stdin; bcrypt uses 72
// bytes, so anything near 4 KiB is not a password (a file piped by mistake).
const maxPasswordLine = 4 << 10

func runUser(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, userUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := flag.NewFlagSet("davmail user "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, userUsage) }
	users := fs.String("users", defaultUsersFile(), "users file")
	var role string
	var replace bool
	var cost int
	switch sub {
	case "add":
		fs.StringVar(&role, "role", "", `role: "admin" or empty`)
		fs.BoolVar(&replace, "replace", false, "change the password and role of an existing user")
		fs.IntVar(&cost, "cost", auth.BcryptCost, "bcrypt cost (4-31; each step doubles the time of a login check)")
	case "del", "list":
	case "help", "-h", "--help":
		fmt.Fprint(stdout, userUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "davmail user: unknown command %q\n\n%s", sub, userUsage)
		return exitUsage
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return exitCodeFor(err)
	}
	want := 1
	if sub == "list" {
		want = 0
	}
	if len(pos) != want {
		if want == 1 {
			fmt.Fprintf(stderr, "davmail user %s: want one user name\n\n%s", sub, userUsage)
		} else {
			fmt.Fprintf(stderr, "davmail user list: unexpected argument %q\n", pos[0])
		}
		return exitUsage
	}

	switch sub {
	case "add":
		name := pos[0]
		if !auth.ValidName(name) {
			fmt.Fprintf(stderr, "davmail user add: invalid name %q: want 1-64 characters of A-Z a-z 0-9 . _ @ + -, not starting with a dot\n", name)
			return exitUsage
		}
		pw, err := readPassword(stdin, stderr, name)
		if err != nil {
			fmt.Fprintf(stderr, "davmail user add: %v\n", err)
			return exitError
		}
		opts := []auth.WriteOption{auth.Cost(cost)}
		if replace {
			opts = append(opts, auth.Replace())
			// Changing a password keeps the role unless --role is given.
			if !flagSet(fs, "role") {
				if u, err := auth.LoadUsers(*users); err == nil {
					if old, ok := u.Lookup(name); ok {
						role = old.Role
					}
				}
			}
		}
		if err := auth.AddUser(*users, name, pw, role, opts...); err != nil {
			fmt.Fprintf(stderr, "davmail user add: %v\n", err)
			if errors.Is(err, auth.ErrUserExists) {
				fmt.Fprintln(stderr, "Use --replace to change the password.")
			}
			return exitError
		}
		fmt.Fprintf(stdout, "user %s saved in %s\n", name, *users)
	case "del":
		if err := auth.DelUser(*users, pos[0]); err != nil {
			fmt.Fprintf(stderr, "davmail user del: %v\n", err)
			return exitError
		}
		fmt.Fprintf(stdout, "user %s deleted from %s (the mailbox is kept)\n", pos[0], *users)
	case "list":
		if _, err := os.Stat(*users); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stderr, "davmail user list: %s does not exist yet (no users)\n", *users)
			return exitOK
		}
		u, err := auth.LoadUsers(*users)
		if err != nil {
			fmt.Fprintf(stderr, "davmail user list: %v\n", err)
			return exitError
		}
		for _, usr := range u.List() {
			if usr.Role != "" {
				fmt.Fprintf(stdout, "%s\t%s\n", usr.Name, usr.Role)
			} else {
				fmt.Fprintf(stdout, "%s\n", usr.Name)
			}
		}
	}
	return exitOK
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

// defaultUsersFile is the users file `davmail serve` would use with the
// same environment (and no config file).
func defaultUsersFile() string {
	cfg, err := config.Load("davmail user", nil, os.LookupEnv, io.Discard)
	if err != nil {
		return config.Defaults().Users
	}
	return cfg.Users
}

// parseInterspersed parses flags that may come before or after the
// positional arguments ("user add alice --role admin").
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// readPassword reads the new password: on a terminal twice without echo,
// otherwise one line from stdin. Empty passwords are refused.
func readPassword(stdin io.Reader, stderr io.Writer, name string) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(stderr, "Password for %s: ", name)
		a, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "Again: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		if len(a) == 0 {
			return "", errors.New("empty password")
		}
		return string(a), nil
	}
	br := bufio.NewReaderSize(io.LimitReader(stdin, maxPasswordLine+1), 512)
	line, err := br.ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	if len(line) > maxPasswordLine {
		return "", fmt.Errorf("password line longer than %d bytes", maxPasswordLine)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if pw == "" {
		return "", errors.New("empty password: write it on standard input, one line")
	}
	return pw, nil
}
