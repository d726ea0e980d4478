#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/seeds/<target>/) from core/tests/fixtures and the signing vector."""
import json, os, pathlib

here = pathlib.Path(__file__).resolve().parent
fixtures = here.parent / "core" / "tests" / "fixtures"
out = here / "seeds"

def put(target, name, data):
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode())

bodies = {
    "notifyPayment": "notify_payment.json",
    "notifyVoid": "notify_void.json",
    "alipayplus.notifyPayment": "alipayplus_notify_payment.json",
}
envs = []
for api, f in bodies.items():
    body = json.loads((fixtures / f).read_text())
    env = {"api": api, "url": "https://merchant.example/n", "body": body}
    envs.append(env)
    put("envelope", f, json.dumps(env))
    put("envelope", "profile_" + f, json.dumps(dict(env, profile="strict")))
put("batch", "all.json", json.dumps({"notifications": envs}))
put("batch", "one_bad.json", json.dumps({"notifications": [envs[0], {"api": "nope"}]}))
for f in ["inquiry_by_payment_id.json", "inquiry_by_payment_request_id.json"]:
    put("inquiry", f, (fixtures / f).read_bytes())
for i, h in enumerate([
    "algorithm=RSA256, keyVersion=1, signature=KrwDE9tAPJYBb2cPkh%2BlbGp7Q%3D%3D",
    "algorithm=RSA256,keyVersion=0,signature=KrwDE9tAPJYBb2cPkh+lbGp7Q==",
    "ALGORITHM=rsa256, keyversion=2, signature=%2b%2f%2b%2fAQ%3d%3d, extra=1",
]):
    put("signature_header", f"h{i}", h)
for i, (status, flags, body) in enumerate([
    (200, 0, '{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"}}'),
    (200, 1, '{"result":{"resultStatus":"F","resultCode":"PROCESS_FAIL","resultMessage":"no"}}'),
    (200, 2, '{"result":{"resultStatus":"U","resultCode":"REQUEST_TRAFFIC_EXCEED_LIMIT"}}'),
    (200, 0x3c, '{"result":{"resultStatus":"F","resultCode":"SYSTEM_ERROR"}}'),
    (429, 0x40, ''),
    (500, 0, 'oops'),
]):
    put("ack_classify", f"a{i}", status.to_bytes(2, "big") + bytes([flags]) + body.encode())

# A forwarding profile's bodies: a string and an object of strings beyond the table.
fwd = json.loads((fixtures / "notify_payment.json").read_text())
fwd.update({"acquirerInfo": {"pspId": "P9", "acquirerId": "A1"}, "newField": "v"})
put("extra_fields", "forwarded.json",
    json.dumps({"api": "notifyPayment", "url": "https://merchant.example/n", "body": fwd}))
ap = json.loads((fixtures / "alipayplus_notify_payment.json").read_text())
ap.update({"customsDeclarationAmount": {"currency": "JPY", "value": "80"}, "z": "1"})
put("extra_fields", "alipayplus_customs.json",
    json.dumps({"api": "alipayplus.notifyPayment", "url": "https://a.example/n", "body": ap}))
# Merchant requests: the signing vector's own request (accepted), and one with a bad signature.
sigvec = next(a / "shared" / "spec" / "sigvec" for a in here.parents
              if (a / "shared" / "spec" / "sigvec" / "vector.json").is_file())
vec = json.loads((sigvec / "vector.json").read_text())
content = vec["request"]["content_to_be_signed"]
rest = content.split("\n", 1)[1]
client, remainder = rest.split(".", 1)
t = "2019-11-27T12:01:02.123+08:00"
body = remainder[len(t) + 1:]
put("merchant_request", "vector", "\n".join([client, t, vec["request"]["Signature_header"], body]))
put("merchant_request", "bad_signature",
    "\n".join([client, t, "algorithm=RSA256, keyVersion=1, signature=AAAA", body]))
# http_response: 1 byte (read size - 1), then what notifyd's ingest listener answers.
def response(status, reason, body, extra=b"", chunked=False):
    head = b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\n" % (status, reason) + extra
    if chunked:
        mid = len(body) // 2
        parts = [c for c in (body[:mid], body[mid:]) if c]
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in parts) + b"0\r\n\r\n"
        return head + b"transfer-encoding: chunked\r\n\r\n" + chunks
    date = b"date: Tue, 22 Nov 2026 10:00:00 GMT\r\n"
    return head + b"content-length: %d\r\n" % len(body) + date + b"\r\n" + body

accepted = (b'{"result":{"resultStatus":"S","resultCode":"SUCCESS","resultMessage":"success"},'
            b'"notificationId":"01JD5Z8Q1V7Y3M9K2H4T6R8W0X"}')
for name, step, raw in [
    ("accepted", 255, response(200, b"OK", accepted)),
    ("duplicate", 0, response(200, b"OK", accepted[:-1] + b',"duplicate":true}')),
    ("invalid", 6, response(400, b"Bad Request",
        b'{"result":{"resultStatus":"F","resultCode":"PARAM_ILLEGAL",'
        b'"resultMessage":"body.paymentAmount.value: must be 1 to 16 digits"}}')),
    ("throttled", 15, response(429, b"Too Many Requests",
        b'{"result":{"resultStatus":"U","resultCode":"REQUEST_TRAFFIC_EXCEED_LIMIT",'
        b'"resultMessage":"pending queue is full"}}', extra=b"retry-after: 2\r\n")),
    ("batch_chunked", 3, response(200, b"OK", b'{"results":[' + accepted + b"," + accepted + b"]}",
        chunked=True)),
    ("to_eof", 1, b"HTTP/1.0 503 Service Unavailable\r\n\r\n"
        b'{"result":{"resultStatus":"U","resultCode":"UNKNOWN_EXCEPTION","resultMessage":"shutting down"}}'),
    ("chunk_extension", 2,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n0\r\n\r\n"),
    ("bad_status", 4, b"HTTP/1.1 +20 OK\r\nContent-Length: 0\r\n\r\n"),
]:
    put("http_response", name, bytes([step]) + raw)
