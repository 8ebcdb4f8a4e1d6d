{{ get "maand/bucket" "hello_http_port" }}
