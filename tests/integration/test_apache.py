"""Smoke test: pbiport behind Apache httpd with mod_proxy_fcgi (deploy/apache/)."""
import harness


class ApacheSmoke(harness.SmokeTests, harness.StackTestCase):
    SERVER = "apache"


if __name__ == "__main__":
    harness.main()
