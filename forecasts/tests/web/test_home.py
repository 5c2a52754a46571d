import pytest


@pytest.mark.django_db
def test_landing_page_explains_the_service_and_leads_to_sign_up(client):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "real sky" in html
    assert 'href="/accounts/signup/"' in html
    for sign in ("Aries", "Libra", "Pisces"):
        assert sign in html
    # Works offline: nothing is loaded from another host.
    assert "https://" not in html.split("<body")[0]
    assert '<meta name="viewport"' in html
