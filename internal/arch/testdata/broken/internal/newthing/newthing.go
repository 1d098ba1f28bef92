package newthing
