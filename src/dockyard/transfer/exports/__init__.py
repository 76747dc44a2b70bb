"""Archive downloads: an image (or several) as a tar that ``docker load`` or an OCI tool
accepts. :mod:`.plan` lays out the tar before a byte is sent (so ranges and resumes work);
:mod:`.service` checks access and streams it."""
