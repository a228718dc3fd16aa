#!/usr/bin/env python3
"""A registry token server for tests, as Docker Hub's auth service behaves: GET /token with
basic credentials, `service` and `scope` answers {"token": JWT} (RS256, the signing
certificate in the x5c header, the granted actions in the `access` claim); wrong or missing
credentials get 401. Signing goes through the openssl command line.

usage: token-server.py PORTFILE KEY CERT ISSUER USER PASSWORD LOG
"""
import base64, http.server, json, os, subprocess, sys, time, urllib.parse, uuid

portfile, key, cert, issuer, user, password, logfile = sys.argv[1:8]
der = subprocess.run(["openssl", "x509", "-in", cert, "-outform", "DER"], capture_output=True, check=True).stdout


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(service, scopes, subject):
    header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
    access = []
    for scope in scopes:
        kind, name, actions = scope.split(":", 2) if scope.count(":") >= 2 else ("", "", "")
        if kind == "repository":
            access.append({"type": kind, "name": name, "actions": [a for a in actions.split(",") if a in ("pull", "push")]})
    now = int(time.time())
    claims = {"iss": issuer, "sub": subject, "aud": service, "exp": now + 600, "nbf": now - 30, "iat": now,
              "jti": uuid.uuid4().hex, "access": access}
    signing_input = (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(claims).encode())).encode()
    signature = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=signing_input, capture_output=True, check=True).stdout
    return signing_input.decode() + "." + b64url(signature)


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        given = base64.b64decode(auth[6:]).decode(errors="replace") if auth.startswith("Basic ") else ""
        with open(logfile, "a") as f:
            f.write("%s %s %s\n" % (url.path, ",".join(query.get("scope", [])), "user" if given else "anonymous"))
        if url.path != "/token" or given != "%s:%s" % (user, password):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = json.dumps({"token": token(query.get("service", [""])[0], query.get("scope", []), user)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(portfile + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(portfile + ".tmp", portfile)
server.serve_forever()
