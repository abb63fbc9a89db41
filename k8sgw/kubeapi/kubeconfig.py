"""Find the cluster: load, merge and resolve kubeconfig files (or the service account) into a Connection.

Order (kubectl/client-go, with in-cluster first as in k8s_gateway):

1. an explicit kubeconfig path: one file, must exist, no merging;
2. in-cluster, when KUBERNETES_SERVICE_HOST/PORT are set and the token file exists;
3. $KUBECONFIG (':'-separated; missing files skipped; the first file to set a value wins);
4. $HOME/.kube/config;
5. otherwise KubeconfigError("no Kubernetes configuration found: ...").

Validation follows client-go's validation.go and names the file (and the line of the entry) that
is wrong. What this module must not do: put a token, password or key into an error, a log line
or a repr; it only ever names fields, entries and paths. It does no network I/O.
"""

from __future__ import annotations

import base64
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from k8sgw.kubeapi.auth import EXEC_API_VERSIONS, BasicAuth, ExecAuth, TokenAuth
from k8sgw.kubeapi.connection import Connection
from k8sgw.kubeapi.errors import KubeconfigError
from k8sgw.kubeapi.incluster import DEFAULT_INCLUSTER_DIR, incluster_connection, incluster_unavailable_reason
from k8sgw.kubeapi.tls import decode_base64, load_client_cert, ssl_context

__all__ = ["resolve_connection"]

logger = logging.getLogger(__name__)

# Fields we refuse rather than ignore: ignoring them would talk to the API as someone else, or
# by another route, than the kubeconfig says.
_UNSUPPORTED_USER_FIELDS = ("as", "as-uid", "as-groups", "as-user-extra")


# ---------------------------------------------------------------- loading


class _LineDict(dict[str, Any]):
    """A YAML mapping that remembers the line it starts on (for error messages)."""

    line: int | None = None


class _LineLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Any:
    data = _LineDict()
    data.line = node.start_mark.line + 1
    yield data
    data.update(loader.construct_mapping(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_mapping)


@dataclass(frozen=True)
class _Entry:
    """One named cluster, user or context, with the file that defined it."""

    kind: str  # "cluster", "user", "context"
    name: str
    body: Mapping[str, Any]
    filename: str
    line: int | None

    def error(self, message: str) -> KubeconfigError:
        return KubeconfigError(
            f'{self.kind} "{self.name}": {message}', filename=self.filename, line=self.line
        )

    def str_field(self, key: str) -> str | None:
        value = self.body.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.error(f"{key} must be a string")  # never echo the value: it may be a token
        return value

    def bool_field(self, key: str) -> bool:
        value = self.body.get(key, False)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise self.error(f"{key} must be true or false")
        return value

    def path_field(self, key: str) -> str | None:
        """A file path, relative ones resolved against the directory of the kubeconfig naming it."""
        value = self.str_field(key)
        if value is None:
            return None
        return os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(self.filename)), value))

    def data_field(self, key: str) -> bytes | None:
        value = self.str_field(key)
        if value is None:
            return None
        try:
            return decode_base64(value)
        except ValueError:
            raise self.error(f"{key} is not valid base64") from None


@dataclass
class _Config:
    """The merged view of one or more kubeconfig files: the first file to set a key wins."""

    files: list[str] = field(default_factory=list)
    clusters: dict[str, _Entry] = field(default_factory=dict)
    users: dict[str, _Entry] = field(default_factory=dict)
    contexts: dict[str, _Entry] = field(default_factory=dict)
    current_context: str | None = None

    def where(self) -> str:
        return ":".join(self.files)


_SECTIONS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))


def _load_into(config: _Config, path: str) -> None:
    """Parse one kubeconfig file and merge it into `config` (first set wins)."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as exc:
        raise KubeconfigError(f"cannot read kubeconfig: {exc.strerror or exc}", filename=path) from exc
    except UnicodeDecodeError:
        raise KubeconfigError("kubeconfig is not UTF-8 text", filename=path) from None
    try:
        data = yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        # exc.problem only: str(exc) quotes the offending line, which may hold a token.
        mark = exc.problem_mark
        raise KubeconfigError(
            f"not valid YAML: {exc.problem}", filename=path, line=mark.line + 1 if mark else None
        ) from None
    except yaml.YAMLError:
        raise KubeconfigError("not valid YAML", filename=path) from None
    config.files.append(path)
    if data is None:  # an empty file is an empty config (client-go)
        return
    if not isinstance(data, dict):
        raise KubeconfigError("kubeconfig must be a YAML mapping (kind: Config)", filename=path)

    for section, kind in _SECTIONS:
        items = data.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            raise KubeconfigError(
                f"{section} must be a list", filename=path, line=getattr(data, "line", None)
            )
        target: dict[str, _Entry] = getattr(config, section)
        for item in items:
            line = getattr(item, "line", None)
            if not isinstance(item, dict):
                raise KubeconfigError(
                    f"each of {section} must be a mapping with name and {kind}", filename=path
                )
            name = item.get("name")
            if not isinstance(name, str) or not name:
                raise KubeconfigError(f"an entry of {section} has no name", filename=path, line=line)
            body = item.get(kind)
            if body is None:
                body = {}
            if not isinstance(body, dict):
                raise KubeconfigError(f'{kind} "{name}": {kind} must be a mapping', filename=path, line=line)
            if name not in target:
                target[name] = _Entry(kind, name, body, path, getattr(body, "line", None) or line)

    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        raise KubeconfigError("current-context must be a string", filename=path)
    if current and config.current_context is None:
        config.current_context = current


# ---------------------------------------------------------------- resolving


def _resolve(config: _Config, context: str | None, env: Mapping[str, str]) -> Connection:
    name = context or config.current_context
    if not name:
        raise KubeconfigError("current-context is not set and no context was given", filename=config.where())
    ctx = config.contexts.get(name)
    if ctx is None:
        known = ", ".join(f'"{n}"' for n in sorted(config.contexts)) or "none"
        raise KubeconfigError(f'unknown context "{name}" (contexts: {known})', filename=config.where())

    cluster_name = ctx.str_field("cluster")
    if cluster_name is None:
        raise ctx.error("names no cluster")
    cluster = config.clusters.get(cluster_name)
    if cluster is None:
        raise ctx.error(f'names cluster "{cluster_name}", which is not defined')
    user_name = ctx.str_field("user")
    user: _Entry | None = None
    if user_name is not None:
        user = config.users.get(user_name)
        if user is None:
            raise ctx.error(f'names user "{user_name}", which is not defined')

    source = f'kubeconfig {ctx.filename}, context "{name}"'
    base_url, secure = _server(cluster)
    if user is not None:
        _validate_user(user)

    if not secure:
        # client-go: credentials are used "only if we are secure". Say so, naming no secret.
        if user is not None and _has_credentials(user):
            logger.warning(
                "%s: server %s is plain http, so user %s's credentials are not sent",
                source,
                base_url,
                user.name,
            )
        return Connection(base_url=base_url, verify=True, auth=None, source=source)

    verify = _tls(cluster, user)
    auth = _auth(user, cluster, env) if user is not None else None
    return Connection(
        base_url=base_url,
        verify=verify,
        auth=auth,
        tls_server_name=cluster.str_field("tls-server-name"),
        source=source,
    )


def _server(cluster: _Entry) -> tuple[str, bool]:
    server = cluster.str_field("server")
    if server is None:
        raise cluster.error("has no server")
    if cluster.body.get("proxy-url"):
        raise cluster.error("proxy-url is not supported; set HTTPS_PROXY in the environment instead")
    try:
        url = urlsplit(server)
        url.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise cluster.error("server is not a valid URL") from None
    if url.scheme not in ("https", "http") or not url.hostname:
        raise cluster.error("server must be an https:// (or http://) URL with a host")
    if url.username is not None or url.password is not None:
        raise cluster.error("server URL must not contain credentials")
    if url.query or url.fragment:
        raise cluster.error("server URL must not have a query or fragment")
    return server.rstrip("/"), url.scheme == "https"


def _has_credentials(user: _Entry) -> bool:
    keys = (
        "token",
        "tokenFile",
        "username",
        "password",
        "exec",
        "client-certificate",
        "client-certificate-data",
    )
    return any(user.body.get(k) for k in keys)


def _validate_user(user: _Entry) -> None:
    """client-go validation.go, for the one user we are about to use."""
    body = user.body
    if body.get("auth-provider") is not None:
        provider = body["auth-provider"]
        pname = provider.get("name") if isinstance(provider, dict) else None
        label = f' "{pname}"' if isinstance(pname, str) and pname else ""
        raise user.error(
            f"auth-provider{label} is not supported (removed from kubectl in 1.26); "
            "use an exec credential plugin instead"
        )
    for key in _UNSUPPORTED_USER_FIELDS:
        if body.get(key):
            raise user.error(f"impersonation ({key}) is not supported")

    methods = []
    if body.get("token") or body.get("tokenFile"):
        methods.append("token")
    if body.get("username") or body.get("password"):
        methods.append("username/password")
        if not user.str_field("username"):
            raise user.error("password is set but username is not")
        if not user.str_field("password"):
            raise user.error("username is set but password is not")
    if body.get("exec") is not None:
        methods.append("exec")
    if len(methods) > 1:
        raise user.error(
            f"more than one authentication method ({' and '.join(methods)}); only one is allowed"
        )

    has_cert = bool(body.get("client-certificate") or body.get("client-certificate-data"))
    has_key = bool(body.get("client-key") or body.get("client-key-data"))
    if has_cert and not has_key:
        raise user.error("client-certificate is set but client-key is not")
    if has_key and not has_cert:
        raise user.error("client-key is set but client-certificate is not")


def _tls(cluster: _Entry, user: _Entry | None) -> ssl.SSLContext | bool:
    insecure = cluster.bool_field("insecure-skip-tls-verify")
    ca_data = cluster.data_field("certificate-authority-data")
    ca_file = cluster.path_field("certificate-authority")
    if insecure and (ca_data is not None or ca_file is not None):
        # client-go refuses this too: which of the two did the author mean?
        raise cluster.error("insecure-skip-tls-verify and certificate-authority cannot both be set")

    cert_data = key_data = None
    cert_file = key_file = None
    if user is not None:
        cert_data = user.data_field("client-certificate-data")
        key_data = user.data_field("client-key-data")
        cert_file = None if cert_data is not None else user.path_field("client-certificate")
        key_file = None if key_data is not None else user.path_field("client-key")
    has_cert = cert_data is not None or cert_file is not None
    if insecure and not has_cert:
        return False

    if ca_data is not None:
        ca_file = None  # -data wins
    try:
        ctx = ssl_context(ca_data=ca_data, ca_file=ca_file, insecure=insecure)
    except (ssl.SSLError, ValueError):  # before OSError: SSLError is one
        which = "certificate-authority-data" if ca_data is not None else f"certificate-authority {ca_file}"
        raise cluster.error(f"{which} is not a PEM certificate") from None
    except OSError as exc:
        raise cluster.error(
            f"certificate-authority {ca_file} cannot be read: {exc.strerror or exc}"
        ) from None

    if user is not None and has_cert:
        try:
            load_client_cert(
                ctx, cert_data=cert_data, cert_file=cert_file, key_data=key_data, key_file=key_file
            )
        except ssl.SSLError:
            # ssl's message says nothing useful and we must not quote the material.
            raise user.error(
                "client certificate and key cannot be loaded (not PEM, or the key does not match the certificate)"
            ) from None
        except OSError as exc:
            raise user.error(
                f"client certificate or key {exc.filename} cannot be read: {exc.strerror or exc}"
            ) from None
    return ctx


def _auth(user: _Entry, cluster: _Entry, env: Mapping[str, str]) -> httpx.Auth | None:
    token_file = user.path_field("tokenFile")
    if token_file is not None:  # re-read, and wins over token (kubectl)
        try:
            with open(token_file, "rb"):
                pass
        except OSError as exc:
            raise user.error(f"tokenFile {token_file} cannot be read: {exc.strerror or exc}") from None
        return TokenAuth(token_file=token_file)
    token = user.str_field("token")
    if token is not None:
        return TokenAuth(token)
    username = user.str_field("username")
    if username is not None:
        password = user.str_field("password")
        assert password is not None  # _validate_user
        return BasicAuth(username, password)
    if user.body.get("exec") is not None:
        return _exec_auth(user, cluster, env)
    return None


def _exec_auth(user: _Entry, cluster: _Entry, env: Mapping[str, str]) -> ExecAuth:
    spec = user.body["exec"]
    if not isinstance(spec, dict):
        raise user.error("exec must be a mapping")
    exe = _Entry("user", user.name, spec, user.filename, getattr(spec, "line", None) or user.line)
    command = exe.str_field("command")
    if command is None:
        raise exe.error("exec has no command")
    api_version = exe.str_field("apiVersion")
    if api_version is None:
        raise exe.error("exec has no apiVersion")
    if api_version not in EXEC_API_VERSIONS:
        raise exe.error(
            f"exec apiVersion {api_version} is not supported (use {' or '.join(EXEC_API_VERSIONS)})"
        )
    mode = exe.str_field("interactiveMode")
    if mode is None and api_version.endswith("/v1"):
        raise exe.error("exec interactiveMode must be set for client.authentication.k8s.io/v1")
    if mode not in (None, "Never", "IfAvailable", "Always"):
        raise exe.error("exec interactiveMode must be Never, IfAvailable or Always")
    if mode == "Always":
        raise exe.error("exec interactiveMode is Always, but k8sgw runs without a terminal")
    if os.sep in command:  # a path, not a PATH lookup: relative to the kubeconfig (client-go)
        command = exe.path_field("command") or command

    args = spec.get("args") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise exe.error("exec args must be a list of strings")
    extra: dict[str, str] = {}
    for item in spec.get("env") or []:
        if not (
            isinstance(item, dict)
            and isinstance(item.get("name"), str)
            and isinstance(item.get("value"), str)
        ):
            raise exe.error("exec env must be a list of {name, value} strings")
        extra[item["name"]] = item["value"]
    hint = spec.get("installHint") if isinstance(spec.get("installHint"), str) else None

    cluster_info: dict[str, Any] | None = None
    if exe.bool_field("provideClusterInfo"):
        cluster_info = _exec_cluster_info(cluster)
    return ExecAuth(
        command,
        args,
        api_version=api_version,
        env=extra,
        base_env=env,
        cluster=cluster_info,
        install_hint=hint,
        filename=user.filename,
    )


def _exec_cluster_info(cluster: _Entry) -> dict[str, Any]:
    """spec.cluster of KUBERNETES_EXEC_INFO (clientauthentication/v1 Cluster)."""
    info: dict[str, Any] = {"server": cluster.str_field("server")}
    if (name := cluster.str_field("tls-server-name")) is not None:
        info["tls-server-name"] = name
    if cluster.bool_field("insecure-skip-tls-verify"):
        info["insecure-skip-tls-verify"] = True
    ca = cluster.str_field("certificate-authority-data")
    if ca is None and (ca_file := cluster.path_field("certificate-authority")) is not None:
        try:
            with open(ca_file, "rb") as f:
                ca = base64.b64encode(f.read()).decode("ascii")
        except OSError as exc:
            raise cluster.error(
                f"certificate-authority {ca_file} cannot be read: {exc.strerror or exc}"
            ) from None
    if ca is not None:
        info["certificate-authority-data"] = "".join(ca.split())
    if cluster.bool_field("disable-compression"):
        info["disable-compression"] = True
    extensions = cluster.body.get("extensions")
    if isinstance(extensions, list):
        for ext in extensions:
            if isinstance(ext, dict) and ext.get("name") == "client.authentication.k8s.io/exec":
                info["config"] = ext.get("extension")
    return info


# ---------------------------------------------------------------- entry point


def _load(paths: list[str]) -> _Config:
    config = _Config()
    for path in paths:
        _load_into(config, path)
    return config


def resolve_connection(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    env: Mapping[str, str] | None = None,
    incluster_dir: str = DEFAULT_INCLUSTER_DIR,
) -> Connection:
    """Find the API server and credentials, in kubectl's order (see the module docstring).

    Args:
        kubeconfig: an explicit kubeconfig file (--kubeconfig); it must exist and is not merged.
        context: the context to use instead of current-context (kubeconfig only).
        env: the environment to read KUBECONFIG, HOME and KUBERNETES_SERVICE_* from, and to
            start exec plugins with; None means os.environ.
        incluster_dir: where the service account's token and ca.crt are mounted.

    Returns:
        The Connection; its `source` says where it came from and holds no secret.

    Raises:
        KubeconfigError: no configuration at all, or one that cannot be used (names the file,
            the line of the entry where known, and what is wrong).
    """
    env = os.environ if env is None else env
    if kubeconfig is not None:
        if not os.path.exists(kubeconfig):
            raise KubeconfigError("kubeconfig file does not exist", filename=kubeconfig)
        conn = _resolve(_load([kubeconfig]), context, env)
    elif (incluster := incluster_connection(env, incluster_dir)) is not None:
        conn = incluster
    else:
        tried = [incluster_unavailable_reason(env, incluster_dir) or "in-cluster"]
        if env.get("KUBECONFIG"):
            # Like client-go, a set KUBECONFIG replaces ~/.kube/config even when none of it exists.
            listed = [p for p in env["KUBECONFIG"].split(os.pathsep) if p]
            paths = [p for p in listed if os.path.exists(p)]
            tried.append(f"none of the KUBECONFIG files exist ({', '.join(listed)})")
        else:
            home = env.get("HOME")
            default = os.path.join(home, ".kube", "config") if home else None
            paths = [default] if default and os.path.exists(default) else []
            tried.append("KUBECONFIG is not set")
            tried.append(f"{default} does not exist" if default else "HOME is not set")
        if not paths:
            raise KubeconfigError(
                "no Kubernetes configuration found: " + "; ".join(tried), filename="kubeconfig"
            )
        conn = _resolve(_load(paths), context, env)
    logger.info("Kubernetes API %s from %s", conn.base_url, conn.source)
    return conn
