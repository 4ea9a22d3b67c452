"""Smoke test: pbiport behind lighttpd (deploy/lighttpd/), with a FastCGI pool from spawn-fcgi."""
import harness


class LighttpdSmoke(harness.SmokeTests, harness.StackTestCase):
    SERVER = "lighttpd"


if __name__ == "__main__":
    harness.main()
