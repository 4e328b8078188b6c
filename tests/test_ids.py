"""Ids in: which line of a CSV is a header, and which numbers are exact job ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import intercom_jobs_nb as ij
from intercom_jobs_nb._ids import read_job_ids


def read_csv_ids(tmp_path, text: str):
    path = tmp_path / "ids.csv"
    path.write_text(text, encoding="utf-8")
    return read_job_ids(path)


# -- CSV headers ---------------------------------------------------------------------------------


def test_a_headerless_one_column_csv_keeps_its_first_id(tmp_path):
    assert read_csv_ids(tmp_path, "1001\n1002\n").ids == ["1001", "1002"]


def test_a_headerless_two_column_csv_keeps_its_first_id(tmp_path):
    ids = read_csv_ids(tmp_path, "1001,acme\n1002,globex\n")
    assert ids.ids == ["1001", "1002"]
    assert ids.extra is not None and ids.extra.iloc[:, 0].tolist() == ["acme", "globex"]


def test_a_headerless_three_column_csv_keeps_its_first_id(tmp_path):
    ids = read_csv_ids(tmp_path, "1001,acme,eu\n1002,globex,us\n")
    assert ids.ids == ["1001", "1002"]
    assert ids.extra is not None and ids.extra.shape == (2, 2)


def test_a_headerless_csv_of_one_letter_id_keeps_it(tmp_path):
    assert read_csv_ids(tmp_path, "abc\n").ids == ["abc"]


@pytest.mark.parametrize(
    "header", ["id", "job id", "Job ID", "job_id", "jobid", "job", "JOB-ID", "Id", " job  id "]
)
def test_a_one_column_csv_headed_with_an_id_column_name_does_not_send_it(tmp_path, header):
    ids = read_csv_ids(tmp_path, f"{header}\n1001\n1002\n")
    assert ids.ids == ["1001", "1002"] and not ids.invalid


@pytest.mark.parametrize("header", ["id", "Job ID", "job"])
def test_an_id_column_name_alone_is_a_header_over_letter_ids(tmp_path, header):
    assert read_csv_ids(tmp_path, f"{header}\nabc\ndef\n").ids == ["abc", "def"]


def test_a_header_that_is_not_a_valid_id_is_a_header(tmp_path):
    assert read_csv_ids(tmp_path, "order no.\n1001\n").ids == ["1001"]


def test_a_digitless_header_over_a_numeric_id_is_a_header(tmp_path):
    assert read_csv_ids(tmp_path, "tickets\n1001\n1002\n").ids == ["1001", "1002"]


def test_a_job_id_column_is_the_ids_column_wherever_it_is(tmp_path):
    ids = read_csv_ids(tmp_path, "customer,job_id\nacme,1001\nglobex,1002\n")
    assert ids.ids == ["1001", "1002"]
    assert ids.extra is not None and ids.extra["customer"].tolist() == ["acme", "globex"]


def test_a_known_alias_column_is_the_ids_column_wherever_it_is(tmp_path):
    ids = read_csv_ids(tmp_path, "customer,Job ID\nacme,1001\n")
    assert ids.ids == ["1001"]
    assert ids.extra is not None and list(ids.extra.columns) == ["customer"]


def test_without_an_id_column_name_the_first_column_holds_the_ids(tmp_path):
    ids = read_csv_ids(tmp_path, "ticket,customer\n1001,acme\n")
    assert ids.ids == ["1001"]
    assert ids.extra is not None and ids.extra["customer"].tolist() == ["acme"]


def test_a_header_only_csv_has_no_ids(tmp_path):
    ids = read_csv_ids(tmp_path, "job_id\n")
    assert ids.ids == [] and not ids.invalid


# -- floats that cannot be exact ids -------------------------------------------------------------


def test_a_float_above_2_53_is_refused_not_rounded():
    job_id, problem = ij.check_job_id(float(2**53 + 2))
    assert problem is not None and "float too large to be an exact job id" in problem
    assert job_id != str(2**53 + 2)


def test_a_numpy_float_above_2_53_is_refused():
    _, problem = ij.check_job_id(np.float64(2**60))
    assert problem is not None and "float too large" in problem


def test_a_negative_float_beyond_2_53_is_refused():
    _, problem = ij.check_job_id(-float(2**54))
    assert problem is not None and "float too large" in problem


def test_a_whole_float_within_2_53_is_still_an_id():
    assert ij.check_job_id(float(2**53)) == (str(2**53), None)
    assert ij.check_job_id(np.float32(1001.0)) == ("1001", None)


def test_an_int_of_any_size_is_an_id():
    assert ij.check_job_id(2**64 + 1) == (str(2**64 + 1), None)
    assert ij.check_job_id(np.int64(2**62 + 1)) == (str(2**62 + 1), None)


def test_a_too_large_float_in_a_series_becomes_an_invalid_row_not_another_job():
    ids = read_job_ids(pd.Series([1001.0, float(2**53 + 2)]))
    assert ids.ids[0] == "1001" and ids.ids[0] not in ids.invalid
    assert "float too large" in ids.invalid[ids.ids[1]]
    assert str(2**53 + 2) not in ids.ids
