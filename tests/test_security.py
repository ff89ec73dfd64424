"""The careful-deployment settings of hub/security.py, on the demo hub (they hold in both modes)."""

from __future__ import annotations

from tests.hubtools import DEMO_PASSWORD


def test_api_tokens_must_expire(hub):
    elena = hub.login("elena", DEMO_PASSWORD)
    unbounded = elena.hub_api("POST", "/users/elena/tokens", json={"note": "no expiry asked"})
    assert unbounded.status_code == 201 and unbounded.json()["expires_at"], "a token without expiry"
    too_long = elena.hub_api("POST", "/users/elena/tokens", json={"note": "a year", "expires_in": 365 * 24 * 3600})
    assert too_long.status_code == 400


def test_members_servers_ignore_jupyter_config_in_their_home(hub):
    """A member's ~/.jupyter cannot loosen their server: frame-ancestors stays 'none'."""
    config = hub.state_dir / "homes" / "elena" / ".jupyter" / "jupyter_server_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        "c.ServerApp.tornado_settings = {'headers': {'Content-Security-Policy': \"frame-ancestors *\"}}\n"
    )
    elena = hub.login("elena", DEMO_PASSWORD)
    if elena.hub_api("GET", "/users/elena").json().get("servers"):
        elena.stop_server()  # the configuration is read when the server starts
    try:
        elena.start_server()
        policy = elena.server("GET", "/lab").headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy, policy
    finally:
        config.unlink()
        elena.stop_server()


def test_members_cannot_install_into_the_shared_environment(hub):
    """JupyterLab's extension manager is read-only in members' servers (it would pip-install as the server's user)."""
    elena = hub.login("elena", DEMO_PASSWORD)
    elena.start_server()
    listing = elena.server("GET", "/lab/api/extensions", params={"refresh": 0})
    assert listing.status_code == 200, listing.text
    r = elena.server("POST", "/lab/api/extensions", json={"cmd": "install", "extension_name": "jupyterlab-leva-probe"})
    assert r.status_code == 422 and "blocked" in r.json()["message"], r.text
    assert '"extensionManager": {"can_install": false' in elena.server("GET", "/lab").text
