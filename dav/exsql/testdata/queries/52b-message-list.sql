SELECT "http://schemas.microsoft.com/exchange/permanenturl",
 "http://schemas.microsoft.com/mapi/proptag/x0e060040","urn:schemas:httpmail:read",
 "http://schemas.microsoft.com/mapi/proptag/x0e230003","http://schemas.microsoft.com/exchange/keywords-utf8",
 "http://schemas.microsoft.com/exchange/permanenturl","DAV:uid",
 "http://schemas.microsoft.com/mapi/proptag/x0e070003",
 "http://schemas.microsoft.com/mapi/id/{00062008-0000-0000-c000-000000000046}/0x8570" as deleted,
 "http://schemas.microsoft.com/mapi/proptag/x10900003","DAV:getlastmodified","DAV:contentclass",
 "http://schemas.microsoft.com/mapi/proptag/x10f3001f","http://schemas.microsoft.com/mapi/proptag/x10810003",
 "http://schemas.microsoft.com/mapi/proptag/x10830003","http://schemas.microsoft.com/mapi/proptag/x0e080003"
FROM SCOPE('Shallow TRAVERSAL OF "/exchange/jdoe/Inbox"')
WHERE ("DAV:isfolder" = false And "DAV:ishidden" = false)
ORDER BY "http://schemas.microsoft.com/mapi/proptag/x0e230003" DESC
