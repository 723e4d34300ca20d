SELECT "DAV:contentclass", "DAV:displayname"
FROM "/vroot/folder/"
WHERE "DAV:ishidden" = false
AND "DAV:isfolder" = false
