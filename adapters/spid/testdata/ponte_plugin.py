"""spid-sp-test authn plugin for Ponte (used by TestSPIDSPTest).

Ponte's SPID login starts at a relying party's /authorize: the plugin follows
Ponte's own redirects (authorize -> chooser -> idp_hint -> the SPID method) in
spid-sp-test's session, which then holds the cookie of the browser that made
the login challenge, and hands spid-sp-test the Ponte URL that answers with
the 302 to the identity provider. Responses are posted in the same session and
followed to the relying party (HTTP 200 for an accepted response).
"""
from urllib.parse import urljoin, urlparse


class Ponte(object):
    def __init__(self, requests_session, authn_request_url, request_method="GET",
                 request_body={}, request_content_type="data"):
        self.session = requests_session
        self.url = authn_request_url

    def request(self):
        host = urlparse(self.url).netloc
        url = self.url
        for _ in range(10):
            res = self.session.get(url, allow_redirects=False, verify=False)
            loc = res.headers.get("Location")
            if res.status_code not in (302, 303) or not loc:
                raise Exception(f"Ponte answered {res.status_code} at {url}")
            nxt = urljoin(url, loc)
            if urlparse(nxt).netloc != host:
                return url  # this URL sends the browser to the identity provider
            url = nxt
        raise Exception("too many redirects inside Ponte")

    def response(self, url, data={}, **kwargs):
        return self.session.post(url, data=data, allow_redirects=True, verify=False)
