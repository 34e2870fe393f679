"""A mail client's session through Python's imaplib against a real node.

Usage: imaplib_session.py HOST PORT USER PASSWORD
Exits non-zero with a message on the first unexpected answer.
"""
import imaplib
import re
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]


def ok(res, what):
    typ, data = res
    if typ != "OK":
        sys.exit(f"{what}: {typ} {data!r}")
    return data


M = imaplib.IMAP4(host, port)
caps = M.capabilities
for cap in ("IMAP4REV1", "LITERAL+", "ID", "IDLE", "SASL-IR"):
    if cap not in caps:
        sys.exit(f"pre-login capability {cap} missing from {caps}")
ok(M.login(user, password), "LOGIN")
caps = ok(M.capability(), "CAPABILITY")[0].decode().upper().split()
for cap in ("UIDPLUS", "MOVE", "SORT", "NAMESPACE", "SPECIAL-USE", "ESEARCH", "UNSELECT", "LIST-STATUS"):
    if cap not in caps:
        sys.exit(f"capability {cap} missing after login: {caps}")

# Folders, with a hierarchy and a non-ASCII name (modified UTF-7).
ok(M.create("Projects"), "CREATE Projects")
ok(M.create("Projects.2026"), "CREATE Projects.2026")
ok(M.create('"&AMk-t&AOk-"'), "CREATE Été")
typ, _ = M.create("Projects")
if typ != "NO":
    sys.exit("CREATE of an existing folder did not fail")
listing = b"\n".join(ok(M.list(), "LIST"))
for name in (b"INBOX", b"Projects", b"Projects.2026", b"&AMk-t&AOk-"):
    if name not in listing:
        sys.exit(f"LIST lacks {name!r}: {listing!r}")
if not re.search(rb"\\HasChildren[^\n]*\"Projects\"|\\HasChildren\) \"\.\" Projects\b", listing):
    sys.exit(f"Projects not shown with \\HasChildren: {listing!r}")
ok(M.subscribe("Projects"), "SUBSCRIBE")
lsub = b"\n".join(x for x in ok(M.lsub(), "LSUB") if x)
if b"Projects" not in lsub:
    sys.exit(f"LSUB lacks Projects: {lsub!r}")

# APPEND: CRLF and an LF-only message, flags, internal date.
msg1 = (b"From: Alice <alice@example.org>\r\nTo: Bob <bob@example.org>\r\n"
        b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= from Alice\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
        b"Message-ID: <m1@example.org>\r\n\r\nHello Bob,\r\nthe quick brown fox.\r\n")
msg2 = (b"From: Carol <carol@example.org>\nTo: Bob <bob@example.org>\n"
        b"Subject: lf only\nDate: Wed, 25 Nov 2026 10:00:00 +0000\nMessage-ID: <m2@example.org>\n\n"
        b"line one\nline two\n")
data = ok(M.append("Projects", r"(\Flagged $Work)", imaplib.Time2Internaldate(1795000000), msg1), "APPEND 1")
if b"APPENDUID" not in data[0]:
    sys.exit(f"no APPENDUID: {data!r}")
ok(M.append("Projects", None, None, msg2), "APPEND 2")

# STATUS before SELECT.
st = ok(M.status("Projects", "(MESSAGES UNSEEN UIDNEXT UIDVALIDITY)"), "STATUS")[0]
if b"MESSAGES 2" not in st or b"UNSEEN 2" not in st:
    sys.exit(f"STATUS wrong: {st!r}")

ok(M.select("Projects"), "SELECT")
fetched = ok(M.fetch("1:2", "(UID FLAGS RFC822.SIZE INTERNALDATE BODY.PEEK[])"), "FETCH")
# fetched: [(b'1 (UID .. BODY[] {n}', body), b')', ...]
bodies = [part for part in fetched if isinstance(part, tuple)]
if len(bodies) != 2:
    sys.exit(f"FETCH returned {len(bodies)} messages: {fetched!r}")
for head, body in bodies:
    size = int(re.search(rb"RFC822.SIZE (\d+)", head).group(1))
    if size != len(body):
        sys.exit(f"RFC822.SIZE {size} but BODY[] has {len(body)} bytes: {head!r}")
    if b"\n" in body.replace(b"\r\n", b""):
        sys.exit(f"bare LF served: {body!r}")
if b"$Work" not in bodies[0][0] or b"\\Flagged" not in bodies[0][0]:
    sys.exit(f"APPEND flags lost: {bodies[0][0]!r}")
if not re.search(rb'INTERNALDATE "\d{2}-\w{3}-\d{4}', bodies[0][0]):
    sys.exit(f"INTERNALDATE missing: {bodies[0][0]!r}")

# BODY.PEEK did not set \Seen; BODY[TEXT] does.
flags = ok(M.fetch("2", "(FLAGS)"), "FETCH FLAGS")[0]
if b"\\Seen" in flags:
    sys.exit(f"BODY.PEEK set \\Seen: {flags!r}")
ok(M.fetch("2", "(BODY[TEXT])"), "FETCH BODY[TEXT]")
flags = ok(M.fetch("2", "(FLAGS)"), "FETCH FLAGS")[0]
if b"\\Seen" not in flags:
    sys.exit(f"BODY[TEXT] did not set \\Seen: {flags!r}")

# SEARCH over decoded headers and body.
if ok(M.search("UTF-8", "SUBJECT", '"Grüße"'.encode()), "SEARCH SUBJECT")[0].split() != [b"1"]:
    sys.exit("SEARCH SUBJECT (RFC 2047, UTF-8) failed")
if ok(M.search(None, "BODY", "fox"), "SEARCH BODY")[0].split() != [b"1"]:
    sys.exit("SEARCH BODY failed")
if ok(M.search(None, "FROM", "carol", "UNFLAGGED"), "SEARCH FROM")[0].split() != [b"2"]:
    sys.exit("SEARCH FROM UNFLAGGED failed")
if ok(M.search(None, "OR", "KEYWORD", "$Work", "SEEN"), "SEARCH OR")[0].split() != [b"1", b"2"]:
    sys.exit("SEARCH OR KEYWORD SEEN failed")

# SORT by the server.
typ, data = M._simple_command("SORT", "(SUBJECT)", "UTF-8", "ALL")
if typ != "OK":
    sys.exit(f"SORT: {typ} {data!r}")
order = M.untagged_responses.pop("SORT", [b""])[0].split()
if order != [b"1", b"2"]:  # "Grüße from Alice" < "lf only"
    sys.exit(f"SORT (SUBJECT) gave {order!r}")

# STORE, COPY with COPYUID, MOVE, EXPUNGE.
ok(M.store("1", "+FLAGS", r"(\Answered)"), "STORE")
data = ok(M.copy("1", "INBOX"), "COPY")
if b"COPYUID" not in data[0]:
    sys.exit(f"no COPYUID: {data!r}")
typ, data = M._simple_command("MOVE", "2", "Projects.2026")
if typ != "OK":
    sys.exit(f"MOVE: {typ} {data!r}")
ok(M.store("1", "+FLAGS", r"(\Deleted)"), "STORE Deleted")
expunged = ok(M.expunge(), "EXPUNGE")
st = ok(M.status("Projects.2026", "(MESSAGES)"), "STATUS moved")[0]
if b"MESSAGES 1" not in st:
    sys.exit(f"MOVE target wrong: {st!r}")
ok(M.close(), "CLOSE")
st = ok(M.status("Projects", "(MESSAGES)"), "STATUS after expunge")[0]
if b"MESSAGES 0" not in st:
    sys.exit(f"EXPUNGE left messages: {st!r}")

# EXAMINE is read-only.
typ, data = M.select("INBOX", readonly=True)
if typ != "OK":
    sys.exit(f"EXAMINE: {data!r}")
typ, data = M.store("1", "+FLAGS", r"(\Seen)")
if typ == "OK":
    sys.exit("STORE in EXAMINE succeeded")

# RENAME with children, and DELETE.
ok(M.rename("Projects", "Work"), "RENAME")
listing = b"\n".join(ok(M.list(), "LIST"))
if b"Work.2026" not in listing or b"Projects" in listing:
    sys.exit(f"RENAME did not move the hierarchy: {listing!r}")
ok(M.delete("Work.2026"), "DELETE")
typ, _ = M.select("No/Such/..")
if typ != "NO":
    sys.exit("SELECT of an escaping name did not fail")
M.logout()
print("imaplib session: all checks passed")
