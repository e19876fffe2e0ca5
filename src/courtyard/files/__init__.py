"""Files: where bytes live (``store``), what they are (``sniff``), whether they are safe
(``clamd``) and what they look like (``images``). Services decide who may do what with them."""
