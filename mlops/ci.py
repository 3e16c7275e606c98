"""CI helpers: AWS credentials from GitHub's OIDC token, without a third-party action or stored keys.

GitHub's OIDC token lives about five minutes. Handing it to later processes through
AWS_WEB_IDENTITY_TOKEN_FILE makes every one of them re-assume the role with it, so any step that starts
after the token expired (an image push, a deployment run of an hour) fails. Instead the token is exchanged
once, right after it is issued, for session credentials that last the whole job.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime

AUDIENCE = "sts.amazonaws.com"
# STS accepts 900 s up to the role's MaxSessionDuration (at most 12 h).
MIN_SESSION_SECONDS, MAX_SESSION_SECONDS = 900, 43_200


class OidcUnavailable(Exception):
    """Not in a GitHub Actions job with `permissions: id-token: write`."""


class CredentialExchangeFailed(Exception):
    """STS refused the token (role trust policy, audience, session duration); the message says which."""


@dataclass(frozen=True)
class SessionCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime

    def environment(self) -> dict[str, str]:
        """The variables boto3, the AWS CLI and Pulumi's AWS provider read credentials from."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
            "AWS_CREDENTIAL_EXPIRATION": self.expiration.isoformat(),
        }

    def secrets(self) -> tuple[str, ...]:
        """What the runner must mask in every log line."""
        return (self.secret_access_key, self.session_token)


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


def exchange_for_session(role_arn: str, session: str, duration_seconds: int) -> SessionCredentials:
    """Assume `role_arn` once with a fresh OIDC token; the credentials last `duration_seconds`."""
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config
    from botocore.exceptions import ClientError

    if not MIN_SESSION_SECONDS <= duration_seconds <= MAX_SESSION_SECONDS:
        raise CredentialExchangeFailed(
            f"session duration {duration_seconds} s is outside STS's {MIN_SESSION_SECONDS}..{MAX_SESSION_SECONDS} s"
        )
    token = fetch_oidc_token()
    # AssumeRoleWithWebIdentity is unsigned: the token is the credential.
    sts = boto3.client(
        "sts",
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        endpoint_url=os.environ.get("MLOPS_AWS_ENDPOINT_URL") or None,
        config=Config(signature_version=UNSIGNED),
    )
    try:
        answer = sts.assume_role_with_web_identity(
            RoleArn=role_arn,
            RoleSessionName=session,
            WebIdentityToken=token,
            DurationSeconds=duration_seconds,
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise CredentialExchangeFailed(
            f"STS refused to assume {role_arn}: {error.get('Code')}: {error.get('Message')}"
            " (a longer session needs the role's MaxSessionDuration raised)"
        ) from None
    found = answer["Credentials"]
    return SessionCredentials(
        found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"], found["Expiration"]
    )
