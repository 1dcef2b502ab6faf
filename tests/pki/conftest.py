from tests.crypto.softhsm_fixtures import softhsm_token

__all__ = ["softhsm_token"]
