… WHERE ("DAV:isfolder" = false And "DAV:ishidden" = false And
  ("urn:schemas:httpmail:read" = false And "urn:schemas:httpmail:subject" like '%hello%'
   And "DAV:getlastmodified" >= '2024/01/01 00:00:00'
   And "http://schemas.microsoft.com/mapi/string/{00020386-0000-0000-c000-000000000046}/message-id" = '<m1@example.com>'))
