"""The web studio over plain HTTP: sign-in and sessions, CSRF on every form and on the API with a
cookie, suspension and the kill switch ending sessions, and user text escaped on every page."""
from __future__ import annotations

import re

import httpx
import pytest

from service_helpers import Api, Browserless, add_studio_user, expect_error, wait_for

XSS = '<script>window.pwned=1</script><img src=x onerror="alert(1)">'


@pytest.fixture(scope="module")
def studio(governed):
    add_studio_user(governed, "cara", "creator")
    add_studio_user(governed, "rex", "reviewer")
    add_studio_user(governed, "adam", "admin")
    add_studio_user(governed, "tess", "tester")
    return governed


def test_pages_need_a_session_and_send_strangers_to_sign_in(studio):
    for path in ("/create", "/videos", "/review", "/reports", "/admin"):
        response = httpx.get(studio.url + path)
        assert response.status_code == 303 and response.headers["location"] == f"/signin?next={path}"
    assert httpx.get(studio.url + "/gallery").status_code == 200
    assert httpx.get(studio.url + "/static/studio.js").status_code == 200


def test_a_wrong_password_or_unknown_user_gets_no_cookie(studio):
    for name, password in (("cara", "wrong password"), ("nobody", "correct horse")):
        client = httpx.Client(base_url=studio.url)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)[1]
        response = client.post("/signin", data={"csrf": token, "username": name, "password": password})
        assert response.status_code == 303 and "failed=1" in response.headers["location"]
        assert "reelforge_session" not in response.headers.get("set-cookie", "")


def test_sign_in_without_its_form_token_is_refused(studio):
    response = httpx.post(studio.url + "/signin", data={"username": "cara", "password": "correct horse"},
                          headers={"Accept": "text/html"})
    assert response.status_code == 403 and "reelforge_session" not in response.headers.get("set-cookie", "")


def test_the_session_cookie_is_httponly_and_samesite(studio):
    client = httpx.Client(base_url=studio.url)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)[1]
    cookie = client.post("/signin", data={"csrf": token, "username": "cara", "password": "correct horse"}
                         ).headers["set-cookie"]
    assert "reelforge_session=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()


def test_a_form_post_without_the_csrf_token_changes_nothing(studio):
    cara = Browserless(studio.url, "cara", "correct horse")
    for token in (None, "forged"):
        data = {"prompt": "a red ball", "seconds": "1"} | ({"csrf": token} if token else {})
        assert cara.client.post("/create", data=data).status_code == 403
    assert "data-video-id" not in cara.client.get("/videos").text


def test_the_api_takes_the_cookie_but_writes_need_the_csrf_header(studio):
    cara = Browserless(studio.url, "cara", "correct horse")
    assert cara.client.get("/v1/videos").status_code == 200
    expect_error(cara.client.post("/v1/videos", json={"prompt": "a red ball", "seconds": "1"}), 403, "forbidden")
    created = cara.client.post("/v1/videos", json={"prompt": "a red ball", "seconds": "1"},
                               headers={"X-CSRF-Token": cara.csrf})
    assert created.status_code == 200, created.text


def test_signing_out_ends_the_session_at_once(studio):
    cara = Browserless(studio.url, "cara", "correct horse")
    cookie = cara.client.cookies["reelforge_session"]
    assert cara.post("/signout").status_code == 303
    stale = httpx.Client(base_url=studio.url, cookies={"reelforge_session": cookie})
    assert stale.get("/videos").status_code == 303
    expect_error(stale.get("/v1/videos"), 401, "session_expired")


def test_a_suspended_user_is_refused_on_the_next_request(studio):
    add_studio_user(studio, "sam", "creator")
    sam = Browserless(studio.url, "sam", "correct horse")
    studio.admin.ok("POST", "/v1/admin/suspend", json={"users": ["sam"], "reason": "test"})
    assert sam.client.get("/videos").status_code == 303
    expect_error(sam.client.get("/v1/videos"), 401, "user_suspended")
    with pytest.raises(AssertionError):
        Browserless(studio.url, "sam", "correct horse")  # and cannot sign in again


def test_a_creator_makes_variations_with_every_setting_recorded(studio):
    cara = Browserless(studio.url, "cara", "correct horse")
    response = cara.post("/create", {"prompt": "a red ball rolls left", "seconds": "1", "aspect": "9:16",
                                     "size": "native", "seed": "41", "variations": "2", "steps": "3",
                                     "guidance": "2.5", "turbo": "on", "negative_prompt": "blur"})
    assert response.status_code == 303, response.text
    videos = [v for v in cara.client.get("/v1/videos").json()["data"] if v["prompt"] == "a red ball rolls left"]
    assert len(videos) == 2 and {v["size"] for v in videos} == {"64x112"}
    from reelforge.service import crud
    with studio.app.state.sessions() as session:
        specs = crud.specs(session, [v["id"] for v in videos])
    assert sorted(s.seed for s in specs.values()) == [41, 42]
    assert {(s.steps, s.guidance, s.cache_threshold, s.negative_prompt) for s in specs.values()} == {
        (3, 2.5, 0.1, "blur")}
    page = cara.client.get("/videos").text
    assert "Turbo" in page and "blur" in page and "on (cache threshold 0.1)" in page


def test_a_bad_setting_is_shown_on_the_form_with_what_was_typed(studio):
    cara = Browserless(studio.url, "cara", "correct horse")
    response = cara.post("/create", {"prompt": "a kept prompt", "seconds": "1", "steps": "999"})
    assert response.status_code == 400 and "steps" in response.text and "a kept prompt" in response.text


def test_prompts_reasons_and_descriptions_are_escaped_everywhere(studio):
    cara, rex = Browserless(studio.url, "cara", "correct horse"), Browserless(studio.url, "rex", "correct horse")
    assert cara.post("/create", {"prompt": XSS, "seconds": "1"}).status_code == 303
    video = next(v for v in cara.client.get("/v1/videos").json()["data"] if v["prompt"] == XSS)
    wait_for(lambda: cara.client.get(f"/v1/videos/{video['id']}").json()["status"] == "completed")
    assert cara.post(f"/videos/{video['id']}/publication", {"action": "submit"}).status_code == 303
    assert rex.post(f"/videos/{video['id']}/report", {"category": "other", "severity": "low",
                                                      "description": XSS}).status_code == 303
    assert rex.post(f"/review/{video['id']}/reject", {"reason": XSS}).status_code == 303
    admin = Browserless(studio.url, "adam", "correct horse").client.get("/admin").text
    assert "\\u003cscript\\u003ewindow.pwned" in admin and "<script>window" not in admin  # the audit's JSON
    pages = [cara.client.get("/videos").text, rex.client.get("/reports").text]
    assert rex.post(f"/review/{video['id']}/approve").status_code == 409  # rejected: no longer pending
    assert cara.post(f"/videos/{video['id']}/publication", {"action": "submit"}).status_code == 303
    pages.append(rex.client.get("/review").text)
    assert rex.post(f"/review/{video['id']}/approve").status_code == 303
    gallery = httpx.get(studio.url + "/gallery").text
    link = re.search(r'href="(/share/[^"]+)"', gallery)[1]
    pages += [gallery, httpx.get(studio.url + link, headers={"Accept": "text/html"}).text]
    for html in pages:
        assert "<script>window.pwned" not in html and "<img src=x" not in html
        assert "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html


def test_the_share_link_gives_browsers_a_page_and_programs_json(studio):
    cara = Browserless(studio.url, "cara", "correct horse")
    rex = Browserless(studio.url, "rex", "correct horse")
    assert cara.post("/create", {"prompt": "a shared ball", "seconds": "1"}).status_code == 303
    video = next(v for v in cara.client.get("/v1/videos").json()["data"] if v["prompt"] == "a shared ball")
    wait_for(lambda: cara.client.get(f"/v1/videos/{video['id']}").json()["status"] == "completed")
    cara.post(f"/videos/{video['id']}/publication", {"action": "submit"})
    rex.post(f"/review/{video['id']}/approve")
    link = re.search(r'href="(/share/[^"]+)"', cara.client.get("/videos").text)[1]
    page = httpx.get(studio.url + link, headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.headers["content-type"].startswith("text/html") and "<video" in page.text
    assert "Generated by ReelForge" in page.text
    assert httpx.get(studio.url + link).json()["id"] == video["id"]
    assert httpx.get(studio.url + "/share/withdrawn-or-never", headers={"Accept": "text/html"}).status_code == 404


def test_roles_see_only_their_pages(studio):
    cara = Browserless(studio.url, "cara", "correct horse")
    for path in ("/review", "/admin"):
        assert cara.client.get(path).status_code == 403
    tess = Browserless(studio.url, "tess", "correct horse")
    assert tess.client.get("/reports").status_code == 200 and tess.client.get("/admin").status_code == 403


def test_the_kill_switch_needs_its_confirmation_and_then_ends_every_session(tmp_path, tiny_model_dir):
    from service_helpers import start_gated
    live = start_gated(tmp_path / "home", tiny_model_dir)
    try:
        add_studio_user(live, "adam", "admin")
        add_studio_user(live, "cara", "creator")
        adam, cara = Browserless(live.url, "adam", "correct horse"), Browserless(live.url, "cara", "correct horse")
        key = Api(live.url, live.key("bot"))
        assert adam.post("/admin/kill-switch", {"confirm": "yes"}).status_code == 400
        assert cara.client.get("/videos").status_code == 200
        assert adam.post("/admin/kill-switch", {"confirm": "SUSPEND ALL", "reason": "drill"}).status_code == 303
        for client in (adam.client, cara.client):
            assert client.get("/videos").status_code == 303
        expect_error(key.get("/v1/videos"), 401)
        assert Browserless(live.url, "cara", "correct horse").client.get("/videos").status_code == 200
    finally:
        live.stop()


def test_set_password_cli_reads_stdin_and_fails_in_one_line(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from reelforge.cli import main
    monkeypatch.setenv("REELFORGE_HOME", str(tmp_path))
    runner = CliRunner()
    assert runner.invoke(main, ["users", "create", "ann", "--role", "creator"]).exit_code == 0
    ok = runner.invoke(main, ["users", "set-password", "ann", "--password-stdin"], input="long enough\n")
    assert ok.exit_code == 0, ok.output
    for name, password in (("ann", "short\n"), ("bob", "long enough\n")):
        bad = runner.invoke(main, ["users", "set-password", name, "--password-stdin"], input=password)
        assert bad.exit_code == 2 and bad.output.startswith("error: ") and len(bad.output.strip().splitlines()) == 1
