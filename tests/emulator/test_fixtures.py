#!/usr/bin/env python3
"""Tenant fixtures: the demo tenant is the default, test.json loads, gen_tenant.py output works end to end."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

from emutest import FIXTURES, HERE, PBI, Emulator, main

import tmdl

DEMO_SCAN = ("11111111-aaaa-4000-8000-000000000002", "demo-scan-secret")


class DemoTenant(unittest.TestCase):
    def test_bare_start_serves_the_demo_tenant(self):
        emu = Emulator(fixture=None)
        try:
            sp = emu.sp_token(*DEMO_SCAN, tenant="contoso.example")
            names = [w["displayName"] for w in emu.call("GET", "/fabric/v1/workspaces", token=sp).json["value"]]
            self.assertEqual(names, ["Finance", "Sales Analytics"])
            r = emu.call("POST", "/powerbi/v1.0/myorg/admin/workspaces/getInfo?datasetSchema=true&lineage=true"
                                 "&datasourceDetails=true", token=sp,
                         body={"workspaces": ["a0000000-0000-4000-8000-000000000001"]})
            self.assertEqual(r.status, 202)
            emu.control("POST", "advance")
            out = emu.call("GET", "/powerbi/v1.0/myorg/admin/workspaces/scanResult/" + r.json["id"], token=sp).json
            ws = out["workspaces"][0]
            self.assertEqual(sorted(d["name"] for d in ws["datasets"]), ["Customer 360", "Sales"])
            self.assertEqual(len(out["datasourceInstances"]), 2)
            # every fixture model yields a definition the emulator itself accepts
            st = emu.control("GET", "state?sections=models")
            for m in st["models"]:
                parsed = tmdl.parse_parts({k: v for k, v in m["parts"].items() if k.startswith("definition/")})
                self.assertEqual([t["name"] for t in parsed["tables"]], m["tables"])
            alice = emu.user_tokens("alice@contoso.example", client_id="11111111-aaaa-4000-8000-000000000001",
                                    secret="demo-web-secret", tenant="contoso.example",
                                    scopes=["offline_access", PBI + "Dataset.ReadWrite.All"])
            self.assertIn("refresh_token", alice)
        finally:
            emu.stop()


class Generator(unittest.TestCase):
    def gen(self, path, *args):
        subprocess.run([sys.executable, os.path.join(HERE, "gen_tenant.py"), "--out", path] + list(args), check=True)
        with open(path) as f:
            return f.read()

    def test_generated_tenant_end_to_end(self):
        with tempfile.TemporaryDirectory() as d:
            args = ["--workspaces", "30", "--models-per", "2", "--reports-per", "3", "--page-size", "7"]
            a = self.gen(os.path.join(d, "a.json"), *args)
            b = self.gen(os.path.join(d, "b.json"), *args)
            self.assertEqual(a, b)  # deterministic
            fx = json.loads(a)
            self.assertEqual(len(fx["tenants"][0]["workspaces"]), 30)
            emu = Emulator(fixture=None)
            try:
                emu.control("POST", "load", fx)
                sp = emu.sp_token()
                j = emu.call("GET", "/fabric/v1/workspaces", token=sp).json
                ids = [w["id"] for w in j["value"]]
                while "continuationUri" in j:
                    j = emu.call("GET", j["continuationUri"], token=sp).json
                    ids += [w["id"] for w in j["value"]]
                self.assertEqual(len(ids), 30)
                mod = emu.call("GET", "/powerbi/v1.0/myorg/admin/workspaces/modified", token=sp).json
                self.assertEqual(sorted(x["id"] for x in mod), sorted(ids))
                r = emu.call("POST", "/powerbi/v1.0/myorg/admin/workspaces/getInfo?datasetSchema=true", token=sp,
                             body={"workspaces": ids})
                emu.control("POST", "advance")
                out = emu.call("GET", "/powerbi/v1.0/myorg/admin/workspaces/scanResult/" + r.json["id"],
                               token=sp).json
                self.assertEqual(sum(len(w["datasets"]) for w in out["workspaces"]), 60)
                self.assertEqual(sum(len(w["reports"]) for w in out["workspaces"]), 90)
                tables = [t for w in out["workspaces"] for ds in w["datasets"] for t in ds["tables"]]
                self.assertEqual(len(tables), 60)
                self.assertFalse(any("source" in t for t in tables))  # expressions were not requested
            finally:
                emu.stop()

    def test_test_fixture_is_valid_json_with_ids(self):
        with open(os.path.join(FIXTURES, "test.json")) as f:
            fx = json.load(f)
        ids = [w["id"] for w in fx["tenants"][0]["workspaces"]]
        self.assertEqual(len(ids), len(set(ids)))


if __name__ == "__main__":
    main()
