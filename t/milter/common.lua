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

-- Run f inside pcall so an error is printed (miltertest itself is quiet).
function run(f)
	local ok, err = pcall(f)
	if not ok then
		print("FAILED: " .. tostring(err))
		os.exit(1)
	end
	print("PASSED")
end
