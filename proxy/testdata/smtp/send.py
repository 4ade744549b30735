#!/usr/bin/env python3
"""Sends one mail to postern with Python's smtplib, as a mailer would.

usage: send.py HOST PORT FROM TO[,TO...] TEXTFILE CTE [CAFILE [USER PASSWORD]]

CTE is the text part's Content-Transfer-Encoding ("quoted-printable" or
"base64"); with CAFILE the client says STARTTLS and verifies postern's
certificate against it; with USER and PASSWORD it then authenticates.
Prints the reply to DATA as JSON: {"code": 250, "message": "..."}.
"""
import json
import smtplib
import ssl
import sys
from email.message import EmailMessage
from email.policy import SMTP


def main():
    host, port, sender, to, textfile, cte = sys.argv[1:7]
    cafile = sys.argv[7] if len(sys.argv) > 7 else ""
    user, password = (sys.argv[8], sys.argv[9]) if len(sys.argv) > 9 else ("", "")
    with open(textfile, encoding="utf-8") as f:
        text = f.read()
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = "Guest access"
    msg.set_content(text, charset="utf-8", cte=cte)
    with smtplib.SMTP(host, int(port), local_hostname="ise.example.org", timeout=60) as s:
        s.ehlo()
        if cafile:
            s.starttls(context=ssl.create_default_context(cafile=cafile))
            s.ehlo()
        if user:
            s.login(user, password)
        code, reply = s.mail(sender)
        if code != 250:
            raise SystemExit(f"MAIL: {code} {reply!r}")
        for rcpt in to.split(","):
            code, reply = s.rcpt(rcpt)
            if code not in (250, 251):
                print(json.dumps({"code": code, "message": reply.decode()}))
                return
        code, reply = s.data(msg.as_bytes(policy=SMTP))
        print(json.dumps({"code": code, "message": reply.decode()}))


main()
