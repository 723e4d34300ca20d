SELECT "DAV:href", "http://schemas.microsoft.com/repl/repl-uid", "http://schemas.microsoft.com/mapi/proptag/x0e080003"
FROM ""
WHERE "DAV:iscollection" = False AND "DAV:ishidden" = False AND "DAV:creationdate" > cast ("2004-01-01T00:00:00Z" as 'dateTime.tz') AND NOT ("urn:schemas:httpmail:subject" LIKE '%[_]spam%') AND "http://schemas.microsoft.com/mapi/proptag/x0e070003" != 8
ORDER BY "DAV:creationdate"
