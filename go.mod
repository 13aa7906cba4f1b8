module wxlogin

go 1.26
