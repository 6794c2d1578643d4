-- mailsms's milter as an MTA sees it: run by tests/integration/test_miltertest.py as
--   miltertest -D port=PORT -s rcpt_checks.lua
-- Any failed check raises an error: miltertest then exits non-zero.

local function check(ok, what)
	if not ok then
		error("FAILED: " .. what)
	end
end

local function reply_is(conn, expected, what)
	local got = mt.getreply(conn)
	check(got == expected, what .. " (reply " .. tostring(got) .. ")")
end

local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 20, 0.25)
check(conn ~= nil, "connect to the milter")
check(mt.test_action(conn, SMFIF_ADDHDRS), "negotiated SMFIF_ADDHDRS")
check(mt.test_action(conn, SMFIF_CHGHDRS), "negotiated SMFIF_CHGHDRS")
check(not mt.test_option(conn, SMFIP_NOHDRS), "headers are asked for")

check(mt.conninfo(conn, "client.example.test", "192.0.2.10") == nil, "conninfo")
reply_is(conn, SMFIR_CONTINUE, "connect")
check(mt.helo(conn, "client.example.test") == nil, "helo")

-- A client that authenticated at the MTA as alice.
mt.macro(conn, SMFIC_MAIL, "i", "4XyZ1", "{auth_authen}", "alice", "{auth_type}", "PLAIN")
check(mt.mailfrom(conn, "<alice@client.example.test>") == nil, "mailfrom")
reply_is(conn, SMFIR_CONTINUE, "MAIL FROM")

check(mt.rcptto(conn, '<"sms:+15551234567?maxmsgs=abc"@sms.example.test>') == nil, "rcpt bad maxmsgs")
reply_is(conn, SMFIR_REPLYCODE, "bad maxmsgs is refused with a reply code (553 5.1.3)")
check(mt.rcptto(conn, '<"sms:+19005550123"@sms.example.test>') == nil, "rcpt premium")
reply_is(conn, SMFIR_REPLYCODE, "premium-rate number is refused with a reply code (550 5.7.1)")
check(mt.rcptto(conn, '<"sms:+15551234567?maxmsgs=2&pass=s3cret"@sms.example.test>') == nil, "rcpt good")
reply_is(conn, SMFIR_CONTINUE, "a good sms: recipient continues")
check(mt.rcptto(conn, "<bob@mailbox.example.test>") == nil, "rcpt plain")
reply_is(conn, SMFIR_CONTINUE, "a plain recipient continues")

check(mt.data(conn) == nil, "data")
local headers = {
	{ "From", "<alice@client.example.test>" },
	{ "To", '"sms:+15551234567?maxmsgs=2&pass=s3cret"@sms.example.test, <bob@mailbox.example.test>' },
	{ "X-Mailsms-Auth", "mallory" },
	{ "Subject", "pass=this stays" },
}
for _, h in ipairs(headers) do
	check(mt.header(conn, h[1], h[2]) == nil, "header " .. h[1])
	reply_is(conn, SMFIR_CONTINUE, "header " .. h[1])
end
check(mt.eoh(conn) == nil, "eoh")
check(mt.eom(conn) == nil, "eom")
reply_is(conn, SMFIR_CONTINUE, "end of message")

check(
	mt.eom_check(conn, MT_HDRCHANGE, "To", '"sms:+15551234567?maxmsgs=2&pass=(set)"@sms.example.test, <bob@mailbox.example.test>'),
	"pass= is removed from To"
)
check(not mt.eom_check(conn, MT_HDRCHANGE, "Subject"), "Subject is left alone")
check(mt.eom_check(conn, MT_HDRDELETE, "X-Mailsms-Auth"), "the forged X-Mailsms-Auth is deleted")
check(mt.eom_check(conn, MT_HDRADD, "X-Mailsms-Auth", "alice"), "X-Mailsms-Auth: alice is added")

-- The next message on the same connection, from a client that did not authenticate.
mt.macro(conn, SMFIC_MAIL, "i", "4XyZ2")
check(mt.mailfrom(conn, "<eve@client.example.test>") == nil, "second mailfrom")
reply_is(conn, SMFIR_CONTINUE, "second MAIL FROM")
check(mt.rcptto(conn, '<"sms:+15551234567"@sms.example.test>') == nil, "second rcpt")
reply_is(conn, SMFIR_CONTINUE, "second rcpt")
check(mt.header(conn, "X-Mailsms-Auth", "alice") == nil, "forged header")
check(mt.eoh(conn) == nil, "second eoh")
check(mt.eom(conn) == nil, "second eom")
reply_is(conn, SMFIR_CONTINUE, "second end of message")
check(mt.eom_check(conn, MT_HDRDELETE, "X-Mailsms-Auth"), "a forged X-Mailsms-Auth is deleted without auth too")
check(not mt.eom_check(conn, MT_HDRADD, "X-Mailsms-Auth"), "no X-Mailsms-Auth is added without auth")

mt.disconnect(conn)
mt.echo("rcpt_checks: all passed")
