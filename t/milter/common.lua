-- common.lua -- shared helpers for the miltertest scripts in t/milter/.
-- Each script does: dofile(os.getenv("T_MILTER") .. "/common.lua")
-- then uses open_conn(), expect(), and finish().  A failed expectation
-- raises an error; t/miltertest.sh reports the script as "not ok".

SOCK = os.getenv("MW_SOCKSPEC")

function expect(cond, what)
	if not cond then
		error("expected: " .. what, 2)
	end
end

function expect_reply(conn, want, what)
	local r = mt.getreply(conn)
	if r ~= want then
		error(string.format("%s: got reply %q, want %q", what,
		    tostring(r), tostring(want)), 2)
	end
end

-- Connect, negotiate, and send connect + HELO for a client.
function open_conn(ip, name, helo)
	local conn = mt.connect(SOCK, 40, 0.05)
	expect(conn ~= nil, "connection to the filter at " .. SOCK)
	local err = mt.negotiate(conn, nil, nil, nil)
	expect(err == nil, "negotiation: " .. tostring(err))
	expect(mt.conninfo(conn, name or "mx.example.test", ip or "192.0.2.10") == nil,
	    "conninfo")
	expect_reply(conn, SMFIR_CONTINUE, "connect")
	expect(mt.helo(conn, helo or "mx.example.test") == nil, "helo")
	expect_reply(conn, SMFIR_CONTINUE, "helo")
	return conn
end

-- MAIL FROM, RCPT TO and DATA, each answered "continue".
function start_message(conn, from, rcpt)
	expect(mt.mailfrom(conn, from) == nil, "mail")
	expect_reply(conn, SMFIR_CONTINUE, "mail")
	expect(mt.rcptto(conn, rcpt) == nil, "rcpt")
	expect_reply(conn, SMFIR_CONTINUE, "rcpt")
	expect(mt.data(conn) == nil, "data")
end

-- Run f inside pcall so an error is printed (miltertest itself is quiet).
function run(f)
	local ok, err = pcall(f)
	if not ok then
		print("FAILED: " .. tostring(err))
		os.exit(1)
	end
	print("PASSED")
end

-- The header fields and body of a message file (CRLF line ends):
-- fields = { {name=, value=}, ... }, value = the raw bytes after the colon
-- (leading space and folding line breaks included).
function read_message(path)
	local f = assert(io.open(path, "rb"))
	local data = f:read("*a")
	f:close()
	local hdr, body = string.match(data, "^(.-)\r\n\r\n(.*)$")
	expect(hdr ~= nil, "a header and a body in " .. path)
	local fields = {}
	for line in string.gmatch(hdr .. "\r\n", "(.-)\r\n") do
		if string.find(line, "^[ \t]") then
			local last = fields[#fields]
			last.value = last.value .. "\r\n" .. line
		else
			local n, v = string.match(line, "^([^:]+):(.*)$")
			expect(n ~= nil, "a header field: " .. line)
			table.insert(fields, { name = n, value = v })
		end
	end
	return fields, body
end

-- mt.header(conn, NAME, VALUE) for a raw field value: miltertest puts the
-- leading space in front of VALUE itself when SMFIP_HDR_LEADSPC is
-- negotiated (mailwarden asks for it), so one leading space is taken off
-- here; the daemon then sees exactly the bytes of the message file.
function send_field(conn, name, raw)
	expect(string.sub(raw, 1, 1) == " ",
	    name .. ": miltertest can only send a value after a space")
	mt.header(conn, name, string.sub(raw, 2))
end
