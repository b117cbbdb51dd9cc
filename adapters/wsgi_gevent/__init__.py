"""The WSGI adapter and gevent's pywsgi server entry point."""
