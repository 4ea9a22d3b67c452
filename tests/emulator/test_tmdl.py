#!/usr/bin/env python3
"""The emulator's TMDL reader: what it accepts, what it refuses (with path:line), data-source discovery."""

import glob
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tmdl  # noqa: E402

TABLE = """/// Customer master
table 'Dim Customer'
\tlineageTag: 1

\tmeasure 'Customer Count' =
\t\t\tCOUNTROWS(
\t\t\t    'Dim Customer'
\t\t\t)
\t\tformatString: 0

\tcolumn CustomerKey
\t\tdataType: int64
\t\tisKey
\t\tsourceColumn: CUSTOMER_KEY

\tcolumn 'O''Brien Flag' = IF([CustomerKey] > 0, "y", "n")
\t\tdataType: string

\tpartition 'Dim Customer' = m
\t\tmode: directQuery
\t\tsource = ```
\t\t\t\tlet
\t\t\t\t    Source = Snowflake.Databases(Server, "WH_1", [Role="R"])
\t\t\t\tin
\t\t\t\t    Source
\t\t\t\t```

\tannotation PBI_ResultType = Table
"""
EXPR = """expression Server = "acme-xy.snowflakecomputing.com" meta [IsParameterQuery=true, Type="Text"]
\tlineageTag: 2
"""
REL = """relationship r1
\tfromColumn: 'Dim Customer'.CustomerKey
\ttoColumn: 'Dim Customer'.'O''Brien Flag'
"""


class Reader(unittest.TestCase):
    def parse(self, table=TABLE, rel=REL):
        return tmdl.parse_parts({"definition/tables/Dim Customer.tmdl": table, "definition/expressions.tmdl": EXPR,
                                 "definition/relationships.tmdl": rel, "definition/model.tmdl": "model Model\n"})

    def test_structure(self):
        m = self.parse()
        t = m["tables"][0]
        self.assertEqual(t["name"], "Dim Customer")
        self.assertEqual(t["description"], "Customer master")
        self.assertEqual([c["name"] for c in t["columns"]], ["CustomerKey", "O'Brien Flag"])
        self.assertEqual(t["columns"][1]["columnType"], "Calculated")
        self.assertEqual(t["measures"][0]["expression"], "COUNTROWS(\n    'Dim Customer'\n)")
        p = t["partitions"][0]
        self.assertEqual((p["name"], p["type"], p["mode"]), ("Dim Customer", "m", "directQuery"))
        self.assertTrue(p["source"].startswith("let\n    Source = Snowflake.Databases(Server"))
        self.assertEqual(m["expressions"][0]["name"], "Server")
        self.assertEqual(m["relationships"][0]["fromColumn"], "'Dim Customer'.CustomerKey")

    def test_datasources_resolve_parameters(self):
        self.assertEqual(tmdl.datasources_of(self.parse()), [{
            "type": "Snowflake", "path": "acme-xy.snowflakecomputing.com;WH_1",
            "parameters": {"server": "acme-xy.snowflakecomputing.com", "warehouse": "WH_1"}}])
        dbx = {"tables": [{"partitions": [{"source": 'Databricks.Catalogs("h.net", "/sql/1.0/warehouses/1", '
                                                     '[Catalog=null])'}]}]}
        self.assertEqual(tmdl.datasources_of(dbx)[0]["path"], "h.net;/sql/1.0/warehouses/1")

    def test_datasources_of_every_connector(self):
        """The M each source's template writes (templates/tmdl/sources/) gives the data source Fabric
        binds by: its connection type and the path its parameters make."""
        cases = [
            ('PostgreSQL.Database(S, "sales"),\n x = Source{[Schema="public",Item="t"]}[Data]', "PostgreSQL",
             "pg.example.com;sales", {"server": "pg.example.com", "database": "sales"}),
            ('Sql.Database(S, "dw")', "SQL", "pg.example.com;dw", {"server": "pg.example.com", "database": "dw"}),
            ('AmazonRedshift.Database(S, "dev")', "AmazonRedshift", "pg.example.com;dev",
             {"server": "pg.example.com", "database": "dev"}),
            ('MySQL.Database(S, "shop", [ReturnSingleDatabase=true])', "MySql", "pg.example.com;shop",
             {"server": "pg.example.com", "database": "shop"}),
            ('Oracle.Database(S, [HierarchicalNavigation=true])', "Oracle", "pg.example.com",
             {"server": "pg.example.com"}),
            ('GoogleBigQuery.Database([BillingProject=S])', "GoogleBigQuery", "GoogleBigQuery", {}),
        ]
        for m, typ, path, params in cases:
            model = {"expressions": [{"name": "S", "expression": '"pg.example.com" meta [IsParameterQuery=true]'}],
                     "tables": [{"partitions": [{"source": "let\n Source = " + m + "\nin\n Source"}]}]}
            self.assertEqual(tmdl.datasources_of(model), [{"type": typ, "path": path, "parameters": params}], m)

    def test_errors_name_file_and_line(self):
        cases = [
            (TABLE.replace("\tcolumn CustomerKey", "  column CustomerKey"), 11, "tabs"),
            (TABLE.replace("\t\tdataType: int64", "\t\t\tdataType: int64"), 12, "indentation"),
            (TABLE.replace("column CustomerKey", "column Customer Key"), 11, "single quotes"),
            (TABLE.replace("'Customer Count'", "'Customer Count"), 5, "unterminated"),
            (TABLE.replace("```\n\t\t\t\tlet", "```\n\t\t\t\tlet", 1).replace("\t\t\t\t```\n", ""), 21, "unterminated"),
            (TABLE.replace("\tcolumn CustomerKey", "\tcolumn 'O''Brien Flag'"), 16, "duplicate"),
            (TABLE + "column Stray\n", 29, "not allowed at top level"),
            (TABLE.replace("\tpartition 'Dim Customer' = m", "\tpartition 'Dim Customer'"), 19, "source type"),
            (TABLE.replace("\tmeasure 'Customer Count' =", "\tmeasure 'Customer Count' ="
                           ).replace("\t\t\tCOUNTROWS(\n\t\t\t    'Dim Customer'\n\t\t\t)\n", ""), 5, "expected"),
        ]
        for text, line, needle in cases:
            with self.assertRaises(tmdl.TmdlError, msg=needle) as cm:
                self.parse(table=text)
            self.assertEqual(cm.exception.path, "definition/tables/Dim Customer.tmdl", needle)
            self.assertEqual(cm.exception.line, line, "%s: %s" % (needle, cm.exception))
            self.assertIn(needle, str(cm.exception))
        with self.assertRaises(tmdl.TmdlError) as cm:
            self.parse(rel=REL.replace("CustomerKey", "Nope"))
        self.assertIn("unknown column", str(cm.exception))
        more = [
            ("table T\n\tcolumn C\n\t\tisHidden: maybe\n", 3, "true or false"),
            ("table T\n\n/// dangling\n", 3, "not followed by an object"),
            ("table T\n\tlineageTag: a\n\tlineageTag: b\n", 3, "set twice"),
            ("table T\n\tannotation X = 1\n\tannotation X = 2\n", 3, "duplicate annotation"),
        ]
        for text, line, needle in more:
            with self.assertRaises(tmdl.TmdlError, msg=needle) as cm:
                tmdl.parse_parts({"definition/tables/T.tmdl": text})
            self.assertEqual(cm.exception.line, line, needle)
            self.assertIn(needle, str(cm.exception))
        # partial declarations merge, but may not set a property twice
        ok = tmdl.parse_parts({"definition/tables/T.tmdl": "table T\n\tcolumn a\n\t\tdataType: string\n",
                               "definition/more.tmdl": "table T\n\tmeasure m = 1\n"})
        self.assertEqual(len(ok["tables"]), 1)
        with self.assertRaises(tmdl.TmdlError) as cm:
            tmdl.parse_parts({"definition/a.tmdl": "table T\n\tlineageTag: a\n",
                              "definition/b.tmdl": "table T\n\tlineageTag: b\n"})
        self.assertIn("set twice", str(cm.exception))

    def test_crlf_bom_and_writer_round_trip(self):
        m = self.parse(table="\ufeff" + TABLE.replace("\n", "\r\n"))
        self.assertEqual(len(m["tables"][0]["columns"]), 2)
        parts = tmdl.write_parts(m)
        again = tmdl.parse_parts(parts)
        self.assertEqual([c["name"] for c in again["tables"][0]["columns"]], ["CustomerKey", "O'Brien Flag"])
        self.assertEqual(again["tables"][0]["partitions"][0]["source"], m["tables"][0]["partitions"][0]["source"])
        self.assertEqual(tmdl.datasources_of(again), tmdl.datasources_of(m))


class Corpus(unittest.TestCase):
    def test_pbiport_render_output_is_accepted(self):
        """The TMDL pbiport's renderer writes (its golden files) must pass the emulator's reader."""
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "render")
        folders = sorted(glob.glob(os.path.join(root, "*", "definition")))
        if not folders:
            sys.stdout.write("\nSKIP: no rendered TMDL under tests/fixtures/render\n")
            return
        for folder in folders:
            base = os.path.dirname(folder)
            parts = {}
            for f in glob.glob(os.path.join(folder, "**", "*.tmdl"), recursive=True):
                with open(f, encoding="utf-8") as fh:
                    parts[os.path.relpath(f, base).replace(os.sep, "/")] = fh.read()
            with self.subTest(render=os.path.basename(base)):
                m = tmdl.parse_parts(parts)
                self.assertTrue(m["tables"])
                self.assertEqual(len(tmdl.datasources_of(m)), 1)

    def test_real_models_parse(self):
        root = os.path.join(os.environ.get("PBIPORT_CORPUS", ""), "tmdl")
        if not os.environ.get("PBIPORT_CORPUS") or not os.path.isdir(root):
            sys.stdout.write("\nSKIP: PBIPORT_CORPUS/tmdl not available; real-model parse check skipped\n")
            return
        models = {}
        for f in glob.glob(os.path.join(root, "**", "*.tmdl"), recursive=True):
            i = f.find(os.sep + "definition" + os.sep)
            if i < 0:
                continue
            with open(f, encoding="utf-8") as fh:
                models.setdefault(f[:i], {})[f[i + 1:].replace(os.sep, "/")] = fh.read()
        self.assertGreater(len(models), 3)
        for name, parts in models.items():
            with self.subTest(model=os.path.basename(name)):
                m = tmdl.parse_parts(parts)
                self.assertTrue(m["tables"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
