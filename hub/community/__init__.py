"""Community profiles: the ``community`` service that links members' learning to their profiles.

- :mod:`.app`: the Tornado application (``python -m hub.community``);
- :mod:`.service`: how ``jupyterhub_config.py`` declares it and its role;
- :mod:`.models`, :mod:`.store`, ``migrations/``: its database;
- :mod:`.access`: every authorisation rule;
- :mod:`.people`: the hub's members, their roles and courses;
- :mod:`.profiles`, :mod:`.progress`, :mod:`.gradebooks`, :mod:`.badges`, :mod:`.signing`: the data;
- :mod:`.state`: what handlers share; :mod:`.base`: sign-in and the viewer's rights;
- :mod:`.views`, :mod:`.api`, :mod:`.pages`: what callers see;
- :mod:`.admin_pages`: the admins' pages (members, enrolments, roles, leavers);
- :mod:`.member_data`: export, erase, hide and first profiles, for :mod:`hub.admin` and :mod:`hub.personal_data`.

Members' servers report lesson progress through :mod:`hub.progress_extension`.
"""
