SELECT "http://schemas.microsoft.com/exchange/permanenturl","DAV:nosubs",
 "http://schemas.microsoft.com/repl/contenttag","http://schemas.microsoft.com/exchange/outlookfolderclass",
 "DAV:hassubs","DAV:getlastmodified","DAV:displayname","DAV:objectcount",
 "urn:schemas:httpmail:unreadcount","http://schemas.microsoft.com/mapi/proptag/x67510003"
FROM SCOPE('Deep TRAVERSAL OF "/exchange/jdoe/"')
WHERE ("DAV:isfolder" = true And "DAV:ishidden" = false And
  (("http://schemas.microsoft.com/exchange/outlookfolderclass" = 'IPF.Note'
    Or "http://schemas.microsoft.com/exchange/outlookfolderclass" = 'IPF.Note.Microsoft.Conversation'
    Or "http://schemas.microsoft.com/exchange/outlookfolderclass" is null)))
ORDER BY "http://schemas.microsoft.com/mapi/proptag/x0e230003" DESC
