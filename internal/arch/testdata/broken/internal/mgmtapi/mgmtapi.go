package mgmtapi
