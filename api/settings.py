"""The API's section of the settings: built by the composition root (``printsync``) from the
``PRINTSYNC_*`` variables, where the ranges are checked; the defaults here are the same."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, field_validator

from storage.cycles import CycleSettings
from storage.guard import GuardPolicy
from storage.health import HealthPolicy
from storage.provisioning_log import LogSettings


class ApiSettings(BaseModel):
    """What the HTTP edge needs."""

    #: External base URL; Tenant URLs are ``{public_url}/scim/v2/{tenant}``.
    public_url: str = "http://127.0.0.1:8000"
    #: Bearer token of the admin endpoints and the admin console; None: both are off.
    admin_token: SecretStr | None = None
    max_body_bytes: int = 1_048_576
    auth_cache_seconds: float = 5.0
    #: Requests per second each tenant may make, refilled continuously (0 disables the limit).
    #: Entra ID needs at least 25 per tenant (ENTRA.md section 6).
    rate_limit_per_second: float = 100.0
    #: Requests a tenant may make at once after a quiet spell: the bucket's size (0 disables).
    rate_limit_burst: int = 200
    #: The Redis that holds the buckets all API processes share; None: each process has its own.
    rate_limit_redis_url: SecretStr | None = None
    #: How long one round trip to that Redis may take before the request is admitted unchecked.
    rate_limit_redis_timeout_seconds: float = 0.25
    #: The health model of the admin endpoints.
    health: HealthPolicy = Field(default_factory=HealthPolicy)
    #: How the API buffers its provisioning-log entries.
    provisioning_log: LogSettings = Field(default_factory=LogSettings)
    #: How Entra's cycles are told apart (``storage.cycles``).
    cycles: CycleSettings = Field(default_factory=CycleSettings)
    #: The deprovisioning guard's defaults (``storage.guard``).
    guard: GuardPolicy = Field(default_factory=GuardPolicy)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("admin_token")
    @classmethod
    def _empty_is_unset(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @property
    def secure_cookies(self) -> bool:
        """Cookies are ``Secure`` when the service is reached over HTTPS."""
        return self.public_url.lower().startswith("https://")

    def tenant_url(self, tenant_name: str) -> str:
        """The Tenant URL an admin pastes into Entra: the SCIM base of one tenant."""
        return f"{self.public_url}/scim/v2/{tenant_name}"
