"""CI helpers: AWS credentials from GitHub's OIDC token, without a third-party action or stored keys.

The workflow asks GitHub for an OIDC token (audience sts.amazonaws.com), writes it to a file, and
exports AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE: boto3, the AWS CLI and Pulumi's AWS provider all
assume the role from those on their own.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from pathlib import Path

AUDIENCE = "sts.amazonaws.com"


class OidcUnavailable(Exception):
    """Not in a GitHub Actions job with `permissions: id-token: write`."""


def fetch_oidc_token(audience: str = AUDIENCE) -> str:
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise OidcUnavailable("no GitHub OIDC token available: the job needs `permissions: id-token: write`")
    separator = "&" if "?" in url else "?"
    request = urllib.request.Request(
        f"{url}{separator}audience={urllib.parse.quote(audience)}",
        headers={"Authorization": f"Bearer {bearer}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        token: str = json.loads(response.read())["value"]
    return token


def web_identity_environment(role_arn: str, token_file: Path, session: str) -> dict[str, str]:
    """Writes the OIDC token to `token_file` (owner-only) and returns the variables to export."""
    token = fetch_oidc_token()  # first: nothing is written when there is no token to write
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.touch(mode=0o600, exist_ok=True)
    token_file.write_text(token)
    return {
        "AWS_ROLE_ARN": role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": str(token_file),
        "AWS_ROLE_SESSION_NAME": session,
    }
