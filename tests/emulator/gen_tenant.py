#!/usr/bin/env python3
"""Writes a large tenant fixture for load tests and benchmarks.

  python3 tests/emulator/gen_tenant.py --workspaces 10000 --models-per 5 --reports-per 10 --out big.json

Same apps, users and secrets as tests/fixtures/tenants/test.json (so the same credentials work);
ids are deterministic (UUIDv5), so two runs with the same arguments write the same file.
Every workspace gives the scanner service principal and alice a role; models alternate between
Snowflake and Databricks M partitions; reports point at the workspace's models.
"""

import argparse
import json
import os
import sys
import uuid

NS = uuid.UUID("0b6c7f0e-52a4-4d8a-9d55-6a1a4f1f2e3c")
HERE = os.path.dirname(os.path.abspath(__file__))


def uid(*parts):
    return str(uuid.uuid5(NS, "/".join(str(p) for p in parts)))


def m_source(kind, db, table):
    if kind == "Snowflake":
        src = 'Snowflake.Databases("acme.snowflakecomputing.com", "WH")'
        return ("let\n    Source = %s,\n    D = Source{[Name=\"%s\",Kind=\"Database\"]}[Data],\n"
                "    S = D{[Name=\"PUBLIC\",Kind=\"Schema\"]}[Data],\n    T = S{[Name=\"%s\",Kind=\"Table\"]}[Data]\n"
                "in\n    T" % (src, db, table))
    src = 'Databricks.Catalogs("adb-1.2.azuredatabricks.net", "/sql/1.0/warehouses/w1", [Catalog=null, Database=null])'
    return ("let\n    Source = %s,\n    C = Source{[Name=\"%s\",Kind=\"Database\"]}[Data],\n"
            "    S = C{[Name=\"default\",Kind=\"Schema\"]}[Data],\n    T = S{[Name=\"%s\",Kind=\"Table\"]}[Data]\n"
            "in\n    T" % (src, db, table))


def build(args):
    with open(os.path.join(HERE, "..", "fixtures", "tenants", "test.json"), encoding="utf-8") as f:
        base = json.load(f)
    t0 = base["tenants"][0]
    tenant = {k: t0[k] for k in ("id", "domain", "display_name", "settings", "apps", "users", "connections")}
    tenant["display_name"] = "Contoso (generated, %d workspaces)" % args.workspaces
    scan_app = t0["apps"][1]["client_id"]
    workspaces = []
    for w in range(args.workspaces):
        wid = uid("ws", w)
        ws = {"id": wid, "name": "Workspace %05d" % w,
              "roles": [{"principal": scan_app, "role": "Viewer"}, {"principal": "alice@contoso.test", "role": "Member"}],
              "semantic_models": [], "reports": [], "dashboards": []}
        if w % 4 == 0:
            ws["capacity_id"] = uid("capacity", w % 3)
        for m in range(args.models_per):
            kind = "Snowflake" if (w + m) % 2 == 0 else "Databricks"
            tables = []
            for t in range(args.tables_per):
                name = "T%d" % t
                tables.append({"name": name,
                               "columns": [{"name": "c%d" % c, "dataType": ("string", "int64", "double")[c % 3]}
                                           for c in range(args.columns_per)],
                               "measures": [{"name": "Rows %s" % name, "expression": "COUNTROWS(%s)" % name}],
                               "partitions": [{"name": name, "mode": "import",
                                               "source": m_source(kind, "DB%d" % m, name.upper())}]})
            ws["semantic_models"].append({"id": uid("model", w, m), "name": "Model %d" % m,
                                          "owner": "alice@contoso.test", "tables": tables})
        for r in range(args.reports_per):
            ds = uid("model", w, r % args.models_per) if args.models_per else None
            ws["reports"].append({"id": uid("report", w, r), "name": "Report %d" % r, "dataset_id": ds})
        for d in range(args.dashboards_per):
            rep = ws["reports"][0] if ws["reports"] else None
            ws["dashboards"].append({"id": uid("dash", w, d), "name": "Dashboard %d" % d, "tiles": [
                {"id": uid("tile", w, d), "title": "Tile", "report_id": rep["id"] if rep else None,
                 "dataset_id": rep["dataset_id"] if rep else None}]})
        workspaces.append(ws)
    tenant["workspaces"] = workspaces
    return {"emulator": {"page_size": args.page_size}, "tenants": [tenant]}


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write a large tenant fixture for the emulator.")
    ap.add_argument("--workspaces", type=int, default=100)
    ap.add_argument("--models-per", type=int, default=5)
    ap.add_argument("--reports-per", type=int, default=10)
    ap.add_argument("--dashboards-per", type=int, default=1)
    ap.add_argument("--tables-per", type=int, default=1)
    ap.add_argument("--columns-per", type=int, default=3)
    ap.add_argument("--page-size", type=int, default=100, help="Fabric list page size in the fixture")
    ap.add_argument("--out", default="-", help="output file (default stdout)")
    args = ap.parse_args(argv)
    for name in ("workspaces", "models_per", "reports_per", "dashboards_per", "tables_per", "columns_per"):
        if getattr(args, name) < 0:
            ap.error("--%s must not be negative" % name.replace("_", "-"))
    fx = build(args)
    if args.out == "-":
        json.dump(fx, sys.stdout, separators=(",", ":"))
    else:
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(fx, f, separators=(",", ":"))
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
