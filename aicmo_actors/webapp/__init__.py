"""The operator web app: server-rendered pages over the control plane, served with the API."""
