"""API settings, read from the environment when the process starts."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """``PRINTSYNC_*`` settings of the HTTP edge."""

    model_config = SettingsConfigDict(env_prefix="PRINTSYNC_", extra="ignore")

    environment: Literal["development", "production"] = "development"
    public_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    admin_token: SecretStr | None = None
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    auth_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    #: Requests per second each tenant may make, refilled continuously (0 disables the limit).
    #: Entra ID needs at least 25 per tenant (ENTRA.md section 6).
    rate_limit_per_second: float = Field(default=100.0, ge=0, allow_inf_nan=False)
    #: Requests a tenant may make at once after a quiet spell: the bucket's size (0 disables).
    rate_limit_burst: int = Field(default=200, ge=0)

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    def tenant_url(self, tenant_name: str) -> str:
        """The Tenant URL an admin pastes into Entra: the SCIM base of one tenant."""
        return f"{self.public_url}/scim/v2/{tenant_name}"


@lru_cache(maxsize=1)
def get_settings() -> ApiSettings:
    return ApiSettings()
