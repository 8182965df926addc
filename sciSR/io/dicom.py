"""dicom reader/writer (being written)."""

SUFFIXES: tuple[str, ...] = ()


def sniff(path) -> bool:
    return False


def read(path, **options):
    raise NotImplementedError


def write(img, path):
    raise NotImplementedError
