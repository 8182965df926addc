"""Every damaged input of cases_readers.CASES is refused by ``sciSR.read`` with one line naming the file
and the field, and the file itself is left untouched."""

import hashlib
import warnings

import pytest
from cases_readers import CASES

import sciSR
from sciSR.errors import SciSRError


def test_catalogue_is_large_and_ids_unique():
    assert len(CASES) >= 35
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_reader_refuses(case, tmp_path):
    path = case.build(tmp_path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # libraries warn about the damage too; the error is what counts
        with pytest.raises(SciSRError) as info:
            sciSR.read(path)
    text = str(info.value)
    assert "\n" not in text, text
    assert info.value.path is not None and path.name in text, text
    # Not in the folder's name: pytest names it after the case, and the case's id often holds the words.
    assert case.expect in text.replace(str(path.parent), ""), text
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
