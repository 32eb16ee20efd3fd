"""``gammastar.core.urls.redact``: the credentials a URL carries (its userinfo, the values of
credential-bearing query parameters: tokens, S3/GCS/Azure signatures, XRootD's authorisation
CGI) are hidden, in a URL alone or in a message that names it; everything else is kept, so
that the redacted URL still says which file it was."""

from __future__ import annotations

import pytest

from gammastar.core.urls import REDACTED, redact, url_problem

R = REDACTED


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        # userinfo: user and password (or a bare token as the user)
        ("http://user:TOKEN@host:8000/f.root", f"http://{R}@host:8000/f.root"),
        ("https://TOKEN@host/f.root", f"https://{R}@host/f.root"),
        ("root://user@eos.cern.ch//eos/f.root", f"root://{R}@eos.cern.ch//eos/f.root"),
        # an @ in the password (not percent-encoded): up to the authority's last @
        ("http://u:p@ss@host/f.root", f"http://{R}@host/f.root"),
        # token parameters, whatever their case; the other parameters kept
        ("https://h/f.root?authz=T&n=1", f"https://h/f.root?authz={R}&n=1"),
        ("https://h/f.root?n=1&Token=T", f"https://h/f.root?n=1&Token={R}"),
        ("https://h/f.root?access_token=T", f"https://h/f.root?access_token={R}"),
        # a pre-signed S3 URL: the credential, the signature and the session token
        (
            (
                "https://b.s3.amazonaws.com/f.root?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                "&X-Amz-Credential=AKIA%2F1&X-Amz-Security-Token=T&X-Amz-Signature=abc"
            ),
            (
                "https://b.s3.amazonaws.com/f.root?X-Amz-Algorithm=AWS4-HMAC-SHA256"
                f"&X-Amz-Credential={R}&X-Amz-Security-Token={R}&X-Amz-Signature={R}"
            ),
        ),
        # Azure SAS and CloudFront signed URLs
        ("https://a.blob.core.windows.net/c/f?sv=1&sig=S", f"https://a.blob.core.windows.net/c/f?sv=1&sig={R}"),
        ("https://d.cloudfront.net/f?Expires=1&Signature=S", f"https://d.cloudfront.net/f?Expires=1&Signature={R}"),
        # XRootD CGI: the grid proxy and the authorisation token
        (
            "root://h//f.root?xrd.gsiusrpxy=x509up_u0&authz=T",
            f"root://h//f.root?xrd.gsiusrpxy={R}&authz={R}",
        ),
        # nothing secret: unchanged
        ("root://eospublic.cern.ch//eos/opendata/f.root", "root://eospublic.cern.ch//eos/opendata/f.root"),
        ("/data/run/a.root", "/data/run/a.root"),
    ],
)  # fmt: skip
def test_redact_url(given, shown):
    assert redact(given) == shown
    assert redact(shown) == shown  # redacting twice changes nothing


def test_redact_in_messages():
    """URLs inside a message (an error, a log line, a YAML text), with the prose's
    punctuation after them kept, each redacted; the rest of the text as it was."""
    text = (
        "http://u:T1@h:1/a.root?authz=T2: not found; tried "
        "'root://h//b.root?authz=T3' (and https://h/c.root?token=T4).\n"
        "  files: [https://T5@h/d.root]"
    )
    out = redact(text)
    for token in ("T1", "T2", "T3", "T4", "T5"):
        assert token not in out
    assert out == (
        f"http://{R}@h:1/a.root?authz={R}: not found; tried "
        f"'root://h//b.root?authz={R}' (and https://h/c.root?token={R}).\n"
        f"  files: [https://{R}@h/d.root]"
    )


def test_pairs_url_with_credentials_refused():
    """``selection.pairs_url`` is recorded in select.json and read back from there, so a URL
    with credentials in it is refused (the filesystem's own settings carry them) rather than
    recorded redacted, where the stages could not read it."""
    why = url_problem("s3://KEY:SECRET@bucket/run/pairs.parquet/", "selection.pairs_url", ["s3"])
    assert why is not None
    assert "carries credentials" in why
    assert "SECRET" not in why
    assert url_problem("s3://bucket/run/pairs.parquet/", "selection.pairs_url", ["s3"]) is None
