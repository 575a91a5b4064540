SELECT {function}(%s, hashtext(%s)) AS ok
