-- A clean message gets our Authentication-Results inserted at the top;
-- forged ones with our authserv-id are deleted, from the last to the
-- first (indexes 3 then 1), the one from another host is kept.
dofile(os.getenv("T_MILTER") .. "/common.lua")
run(function()
	local conn = open_conn()
	start_message(conn, "<a@sender.test>", "<b@example.net>")
	mt.header(conn, "From", "<a@sender.test>")
	mt.header(conn, "Authentication-Results", "mx.test; spf=pass")
	mt.header(conn, "Authentication-Results", "other.example; dkim=pass")
	mt.header(conn, "Authentication-Results", "(x) MX.TEST; dkim=pass")
	mt.header(conn, "Subject", "hello")
	mt.eoh(conn)
	mt.bodystring(conn, "hello\r\n")
	expect(mt.eom(conn) == nil, "eom")
	expect_reply(conn, SMFIR_CONTINUE, "eom")
	expect(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"),
	    "A-R inserted")
	local ar = mt.getheader(conn, "Authentication-Results", 0)
	expect(ar ~= nil and string.find(ar, "^ mx.test;") ~= nil,
	    "our A-R starts with our authserv-id: " .. tostring(ar))
	expect(string.find(ar, "iprev=pass", 1, true) ~= nil,
	    "A-R has iprev=pass: " .. tostring(ar))
	expect(mt.eom_check(conn, MT_HDRDELETE, "Authentication-Results"),
	    "forged A-R deleted")
	mt.disconnect(conn)
end)
