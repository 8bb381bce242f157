-- DKIM with c=simple/simple through the milter protocol: simple header
-- canonicalization hashes the header bytes exactly as written, so this
-- passes only if the daemon gets each value as the MTA received it (one
-- leading space, the inner double spaces, the folding).  The message,
-- signed by dkimpy with test/dkim-keys/rsa2048.pem, is $DKIM_SIMPLE_MSG
-- (written by t/miltertest.sh).  The same message with a second leading
-- space on each value (what these scripts used to send) fails: the
-- check can tell.
dofile(os.getenv("T_MILTER") .. "/common.lua")

local function verify(fields, body, extra)
	local conn = open_conn()
	start_message(conn, "<alice@dkim.test>", "<b@example.net>")
	for _, f in ipairs(fields) do
		send_field(conn, f.name, extra .. f.value)
	end
	mt.eoh(conn)
	mt.bodystring(conn, body)
	expect(mt.eom(conn) == nil, "eom")
	expect_reply(conn, SMFIR_CONTINUE, "eom")
	local ar = mt.getheader(conn, "Authentication-Results", 0)
	mt.disconnect(conn)
	expect(ar ~= nil, "an Authentication-Results header")
	return ar
end

run(function()
	local fields, body = read_message(os.getenv("DKIM_SIMPLE_MSG"))
	expect(string.find(fields[1].value, "c=simple/simple", 1, true),
	    "the message is signed with c=simple/simple")
	local ar = verify(fields, body, "")
	expect(string.find(ar, "dkim=pass%s+header.d=dkim.test") ~= nil,
	    "simple/simple signature verifies: " .. ar)
	ar = verify(fields, body, " ")
	expect(string.find(ar, "dkim=fail", 1, true) ~= nil,
	    "one more leading space in each value: dkim=fail: " .. ar)
end)
