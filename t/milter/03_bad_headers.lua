-- Bad input: a long header line (miltertest itself overflows a stack buffer
-- above ~1 kB; t/postfix.sh sends the 100 kB one), a header with control bytes, and
-- 10,000 header fields.  Each gets a defined answer, the filter lives.
dofile(os.getenv("T_MILTER") .. "/common.lua")
run(function()
	local conn = open_conn()
	mt.mailfrom(conn, "<a@sender.test>")
	mt.rcptto(conn, "<b@example.net>")
	mt.data(conn)
	mt.header(conn, "From", "<a@sender.test>")
	mt.header(conn, "X-Long", string.rep("y", 900))
	expect_reply(conn, SMFIR_CONTINUE, "long header accepted")
	mt.header(conn, "X-Ctl", "a\1b\127c")
	expect_reply(conn, SMFIR_CONTINUE, "control bytes accepted")
	mt.header(conn, "Subject", "ok")
	mt.eoh(conn)
	mt.bodystring(conn, "body\r\n")
	mt.eom(conn)
	expect_reply(conn, SMFIR_CONTINUE, "eom")
	expect(mt.eom_check(conn, MT_HDRINSERT, "Authentication-Results"),
	    "A-R added")

	-- second message on the same connection: 10,000 fields -> 552
	mt.mailfrom(conn, "<a@sender.test>")
	mt.rcptto(conn, "<b@example.net>")
	mt.data(conn)
	mt.header(conn, "From", "<a@sender.test>")
	local refused = false
	for i = 1, 10000 do
		mt.header(conn, "X-N", tostring(i))
		if mt.getreply(conn) == SMFIR_REPLYCODE then
			refused = true
			break
		end
	end
	expect(refused, "10,000 header fields refused (limit 1000)")
	mt.disconnect(conn)

	-- the filter still answers
	conn = open_conn()
	mt.disconnect(conn)
end)
