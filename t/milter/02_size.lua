-- Size cap (max_bytes = 100k in the test config): SIZE= over the cap is
-- refused at MAIL FROM with 552 5.3.4; a body that streams past the cap
-- is refused during the body; a message under the cap passes.
dofile(os.getenv("T_MILTER") .. "/common.lua")
run(function()
	local conn = open_conn()
	mt.mailfrom(conn, "<a@sender.test>", "SIZE=200000")
	expect_reply(conn, SMFIR_REPLYCODE, "MAIL with SIZE over the cap")
	mt.mailfrom(conn, "<a@sender.test>", "SIZE=1000")
	expect_reply(conn, SMFIR_CONTINUE, "MAIL with a small SIZE")
	mt.rcptto(conn, "<b@example.net>")
	mt.data(conn)
	mt.header(conn, "From", "<a@sender.test>")
	mt.header(conn, "Subject", "lie about size")
	mt.eoh(conn)
	local line = string.rep("x", 998) .. "\r\n"
	local chunk = string.rep(line, 50)	-- 50 kB
	mt.bodystring(conn, chunk)
	expect_reply(conn, SMFIR_CONTINUE, "first 50 kB")
	mt.bodystring(conn, chunk)
	expect_reply(conn, SMFIR_CONTINUE, "100 kB")
	mt.bodystring(conn, chunk)
	expect_reply(conn, SMFIR_REPLYCODE, "past the cap")
	mt.disconnect(conn)
end)
