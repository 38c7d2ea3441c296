"""The Authenticator port: a principal for a good credential, AuthenticationFailed else."""

from __future__ import annotations

import pytest

from imagetag.domain.errors import AuthenticationFailed
from tests.contract.adapters import IdentityCase


async def test_a_valid_credential_gives_the_principal_it_stands_for(
    identity_case: IdentityCase,
) -> None:
    principal = await identity_case.authenticator.authenticate(identity_case.valid)
    assert principal == identity_case.principal


async def test_it_is_accepted_again_and_gives_the_same_principal(
    identity_case: IdentityCase,
) -> None:
    for _ in range(2):
        principal = await identity_case.authenticator.authenticate(identity_case.valid)
        assert principal == identity_case.principal


async def test_an_invalid_credential_fails_without_repeating_it(
    identity_case: IdentityCase,
) -> None:
    for credential in identity_case.invalid:
        with pytest.raises(AuthenticationFailed) as refused:
            await identity_case.authenticator.authenticate(credential)
        assert not credential or credential not in str(refused.value)
