"""DuckDB as the reference for edgewise's SQL: loads newline-delimited JSON records as table
`orders` (item VARCHAR, qty INTEGER, price DOUBLE), runs each SQL statement given, and prints
one JSON array of row objects per statement, a line each.

usage: duckdb_query.py RECORDS.jsonl SQL [SQL...]
"""

import json
import sys

import duckdb


def main() -> None:
    records, statements = sys.argv[1], sys.argv[2:]
    db = duckdb.connect()
    # A view cannot take a parameter: the path goes in as a quoted literal.
    path = records.replace("'", "''")
    db.execute(
        f"CREATE VIEW orders AS SELECT * FROM read_json('{path}', format = 'newline_delimited', "
        "columns = {'item': 'VARCHAR', 'qty': 'INTEGER', 'price': 'DOUBLE'})"
    )
    for sql in statements:
        cursor = db.execute(sql)
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, row)) for row in cursor.fetchall()]
        print(json.dumps(rows, default=str))


if __name__ == "__main__":
    main()
