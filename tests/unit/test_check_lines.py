"""`upstream validate` reports CSV line numbers as an editor shows them."""

from __future__ import annotations

from upstream.validate.check import record_lines


def test_line_numbers_follow_quoted_line_breaks(tmp_path):
    path = tmp_path / "WPS_ipv_calls_2024-06-01.csv"
    path.write_bytes(
        b'"a","b"\r\n'                       # line 1: header
        b'1,plain\r\n'                       # line 2: record 1
        b'2,"two\nline ""quoted"" note"\n'   # lines 3-4: record 2
        b'3,"a\n\nb"\n'                      # lines 5-7: record 3
        b'4,last'                            # line 8: record 4, no final line break
    )
    assert record_lines(path, {1, 2, 3, 4}) == {1: 2, 2: 3, 3: 5, 4: 8}
    assert record_lines(path, {3}) == {3: 5}
    assert record_lines(path, set()) == {}
