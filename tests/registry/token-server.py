#!/usr/bin/env python3
"""A bearer-token server for docker-registry's `auth: token`, for the tests
of issue 15 (tests/common/registry/token.rs starts it). It follows the
distribution token spec (docs/spec/auth/token.md and jwt.md of
distribution/distribution): GET <realm>?service=S&scope=repository:NAME:ACTIONS
answers {"token", "access_token", "expires_in", "issued_at"}; the token is a
JWT signed RS256 whose header carries the signing certificate in `x5c` (the
registry verifies that chain against its `rootcertbundle`, the test CA) and
whose claims are iss, sub, aud (= service), exp, nbf, iat, jti and `access`.

Basic credentials USER:PASSWORD get every action asked for; no credentials
get a token with no access (the registry then answers 401 insufficient
scope, as a private repository on a public registry does); wrong ones get
401. Signing is done by `openssl dgst` (the standard library has no RSA).
Each request is logged, one JSON line, to LOG (never the credentials).

usage: token-server.py PORT CERT KEY SIGNER_CERT SIGNER_KEY ISSUER USER PASSWORD LOG
"""

import base64, http.server, json, os, ssl, subprocess, sys, time, urllib.parse

port, cert, key, signer_cert, signer_key, issuer, user, password, log = sys.argv[1:10]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_of(pem_path):
    text = open(pem_path).read()
    body = text.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return base64.b64decode("".join(body.split()))


X5C = [base64.b64encode(der_of(signer_cert)).decode()]


def sign(payload):
    head = {"typ": "JWT", "alg": "RS256", "x5c": X5C}
    signing_input = (b64url(json.dumps(head).encode()) + "." + b64url(json.dumps(payload).encode())).encode()
    sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", signer_key], input=signing_input,
                         capture_output=True, check=True).stdout
    return signing_input.decode() + "." + b64url(sig)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query)
        auth = self.headers.get("Authorization", "")
        who, granted = None, []
        if auth.startswith("Basic "):
            try:
                given = base64.b64decode(auth[6:]).decode()
            except Exception:
                given = ""
            if given != user + ":" + password:
                self.answer(401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}, query, "wrong")
                return
            who = user
        for scope in query.get("scope", []):
            for one in scope.split(" "):
                parts = one.split(":")
                if len(parts) == 3 and parts[0] == "repository" and who:
                    granted.append({"type": "repository", "name": parts[1], "actions": parts[2].split(",")})
        now = int(time.time())
        token = sign({"iss": issuer, "sub": who or "", "aud": query.get("service", [""])[0],
                      "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                      "access": granted})
        self.answer(200, {"token": token, "access_token": token, "expires_in": 300,
                          "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))},
                    query, "basic" if who else "anonymous")

    def answer(self, code, body, query, who):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        with open(log, "a") as f:
            f.write(json.dumps({"path": urllib.parse.urlparse(self.path).path, "query": query,
                                "credentials": who, "status": code}) + "\n")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(port)), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
