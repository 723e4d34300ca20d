SELECT "DAV:displayname", "http://schemas.microsoft.com/exchange/outlookfolderclass", "DAV:hassubs"
FROM SCOPE('hierarchical traversal of ""')
WHERE "DAV:ishidden" = False
