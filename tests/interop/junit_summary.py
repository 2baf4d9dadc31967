"""Read a pytest junit xml file: per-test status and the one-line summary the suite reports.

    python3 junit_summary.py LABEL RESULTS.xml [SUMMARY.txt]

prints (and writes) "LABEL: N passed, F failed, S skipped"; errors count as failed.
"""
import sys
import xml.etree.ElementTree as ET

RANK = {"passed": 0, "skipped": 1, "failed": 2}


def test_results(xml_path):
    """{test id: "passed" | "failed" | "skipped"}; the id is "module.Class::test"."""
    results = {}
    for case in ET.parse(xml_path).iter("testcase"):
        test_id = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            status = "failed"
        elif "skipped" in tags:
            status = "skipped"
        else:
            status = "passed"
        # a test reported twice (e.g. an error in teardown) keeps its worst status
        if RANK[status] >= RANK[results.get(test_id, "passed")]:
            results[test_id] = status
    return results


def summary_line(label, results):
    counts = {s: sum(1 for v in results.values() if v == s) for s in RANK}
    return f"{label}: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped"


if __name__ == "__main__":
    label, xml_path = sys.argv[1], sys.argv[2]
    line = summary_line(label, test_results(xml_path))
    print(line)
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:
            f.write(line + "\n")
