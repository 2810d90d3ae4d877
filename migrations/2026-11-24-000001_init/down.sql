DROP TABLE notifications;
DROP TABLE cart_items;
DROP TABLE product_watchers;
DROP TABLE direct_messages;
DROP TABLE messages;
DROP TABLE room_members;
DROP TABLE rooms;
DROP TABLE users;
