-- One database per service: nobody reads another service's tables.
CREATE DATABASE parley_users;
CREATE DATABASE parley_chat;
