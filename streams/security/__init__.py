"""Access and security: who may read what on the shared cluster (``access_file``, issued client configurations
``client_config``), the HTTP doors' bearer tokens (``tokens``, ``token_store``), failed-login limits
(``login_limits``, ``credential_cache``, ``login_guard``) and the supply-chain audit (``audit``,
``audit_allowlist``, ``pip_audit``). The access *policy* itself is a kernel value (``streams.kernel.access``).
"""

__requires__ = ("platform", "packs")

__layers__ = {
    "pure": ["tokens", "login_limits", "credential_cache", "audit"],
    "files": ["client_config", "token_store", "audit_allowlist"],
    "io": ["pip_audit"],
    "process": ["login_guard"],
}
